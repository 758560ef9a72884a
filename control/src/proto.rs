//! The operator protocol of the control socket, typed: every request is a variant of
//! [`Request`], every answer's data one of the reply types here. The daemon's handlers
//! build these types, `tollgate ctl` sends a [`Request`] and reads the answer back into
//! them ([`Answer::parse`]), and the renderer prints from them: one definition of each
//! command and each answer for the three (docs/ctl.md shows the JSON).
//!
//! On the wire: one JSON object per line each way.
//! Request: `{"cmd": "show counters"}`, with `"args": {...}` for a command that takes
//! arguments (a few carry them as words of `cmd`: `show invoice ACCOUNT [PERIOD]`,
//! `billing close-period|invoice|invoices|rerate ...`).
//! Reply: `{"ok": true, "data": ...}` or `{"ok": false, "error": "..."}`.

#![forbid(unsafe_code)]

pub mod help;

pub use tollgate_control_core::gateway::lac::LacCallView;
pub use tollgate_control_core::gateway::lns::L2tpCallFields;
pub use tollgate_control_core::gateway::pppoe::PppFields;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{LimitsConfig, Mac, Rate, StaticSubscriber};

/// Longest request line the server reads.
pub const MAX_LINE: usize = 64 * 1024;

/// A request line as it is on the wire, before its command is known: `cmd` and `args`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The command, words separated by spaces: `show status`.
    pub cmd: String,
    /// Arguments, when the command takes any.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub args: Value,
}

/// A request: one variant per command. It is sent and read as `{"cmd", "args"}`
/// ([`Envelope`]): the variant is the tag `cmd`, its fields are `args`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "Envelope", into = "Envelope")]
pub enum Request {
    /// `help`
    Help,
    /// `show status`
    ShowStatus,
    /// `show ports`
    ShowPorts,
    /// `show workers`
    ShowWorkers,
    /// `show counters`
    ShowCounters,
    /// `show neighbors` (or `show neighbours`)
    ShowNeighbors,
    /// `show sessions`
    ShowSessions,
    /// `show session`
    ShowSession(SessionArg),
    /// `show services`
    ShowServices,
    /// `show lb`
    ShowLb,
    /// `show accounting`
    ShowAccounting,
    /// `show health`
    ShowHealth,
    /// `show cluster`
    ShowCluster,
    /// `show pools`
    ShowPools,
    /// `show logins`
    ShowLogins,
    /// `show tunnels`
    ShowTunnels,
    /// `show tunnel`
    ShowTunnel(TunnelArg),
    /// `show invoice ACCOUNT [PERIOD]` (words of `cmd`)
    ShowInvoice {
        /// The billing account.
        account: String,
        /// `YYYY-MM`; default: the current period.
        period: Option<String>,
    },
    /// `session add`: the keys of a `[[subscriber]]` table.
    SessionAdd(Box<StaticSubscriber>),
    /// `session remove`
    SessionRemove(SessionEnd),
    /// `session update`
    SessionUpdate(Box<SessionChange>),
    /// `session login`
    SessionLogin(Login),
    /// `session logout`
    SessionLogout(Logout),
    /// `server set`
    ServerSet(ServerChange),
    /// `lb set`
    LbSet(LbChange),
    /// `subscriber add`
    SubscriberAdd(SubscriberAdd),
    /// `subscriber remove`
    SubscriberRemove(UserArg),
    /// `subscriber show`
    SubscriberShow(UserArg),
    /// `subscriber list`
    SubscriberList,
    /// `subscriber import`
    SubscriberImport(SubscriberImport),
    /// `tunnel session remove`
    TunnelSessionRemove(TunnelKey),
    /// `tunnel session level`
    TunnelSessionLevel(TunnelKey),
    /// `billing status`
    BillingStatus,
    /// `billing close-period [PERIOD]`
    BillingClosePeriod {
        /// Default: the last finished period.
        period: Option<String>,
    },
    /// `billing invoice ACCOUNT [PERIOD]`
    BillingInvoice {
        /// The billing account.
        account: String,
        /// Default: the current period.
        period: Option<String>,
    },
    /// `billing invoices [PERIOD]`
    BillingInvoices {
        /// Default: the current period.
        period: Option<String>,
    },
    /// `billing rerate PERIOD`
    BillingRerate {
        /// The closed period.
        period: String,
    },
    /// `billing import`
    BillingImport(BillingImport),
}

/// `{"session": ID or address}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionArg {
    /// A session id or a subscriber address (`show session`: also the user name or
    /// `lac/L2TP-SESSION` of a PPPoE subscriber this LAC switches to an LNS).
    pub session: String,
}

/// `show tunnel`'s `{"tunnel": ID}`
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelArg {
    /// Our tunnel id.
    pub tunnel: u16,
}

/// `session remove`'s arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionEnd {
    /// A session id or a subscriber address.
    pub session: String,
    /// Why (default `admin_reset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// `session update`'s arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionChange {
    /// A session id or a subscriber address.
    pub session: String,
    /// New declared uplink bandwidth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_up: Option<Rate>,
    /// New declared downlink bandwidth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_down: Option<Rate>,
    /// New services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    /// New conditions (any given: the whole set is replaced).
    #[serde(flatten)]
    pub limits: LimitsConfig,
}

/// `session login`'s arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The subscriber's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    /// Its MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    /// Its mobile id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_id: Option<String>,
    /// Channel (line) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<u32>,
}

/// `session logout`'s arguments: a session, or every session of a user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logout {
    /// A session id or a subscriber address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// A user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Why (default `user_request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// `server set`'s arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerChange {
    /// The service's name.
    pub service: String,
    /// Its index in the service, or address[:port].
    pub server: String,
    /// `up` or `down`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Measured response time, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_us: Option<u32>,
    /// CPU load, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_load: Option<u32>,
}

/// `lb set`'s arguments (and its answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LbChange {
    /// The target's MAC.
    pub mac: String,
    /// `up` or `down`.
    pub state: String,
}

/// `subscriber add`'s arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberAdd {
    /// An import record (docs/aaa.md), checked by the store.
    pub record: Value,
    /// Replace a subscriber of that name.
    #[serde(default)]
    pub replace: bool,
}

/// `{"user": NAME}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserArg {
    /// The user name.
    pub user: String,
}

/// `subscriber import`'s arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberImport {
    /// The file's text.
    pub text: String,
    /// Its name (for messages, and the format when `format` is not given).
    pub file: String,
    /// `toml` or `csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Replace subscribers of the same names.
    #[serde(default)]
    pub replace: bool,
}

/// The answer to `tunnel session add`, removed with the IP mode (issue 15 item 5).
pub const TUNNEL_SESSION_ADD_REMOVED: &str = "`tunnel session add` was removed with the IP mode (IP subscribers placed in tunnels without PPP): PPPoE subscribers whose realm has a [[l2tp.lac_realm]] with a customer are placed in tunnels instead; see docs/l2tp.md, \"Migration from IP subscribers\"";

/// `tunnel session remove|level`'s arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelKey {
    /// A tunnelled subscriber's id or address.
    pub session: String,
    /// The new level (`level` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Rate>,
}

/// `billing import`'s arguments: the records, and for a file sent in parts the import's
/// id, the part's number (from 0) and whether more parts follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingImport {
    /// Usage records, checked by the rating engine.
    pub records: Vec<Value>,
    /// The import a part belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<String>,
    /// The part's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    /// Whether more parts follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
}

/// The commands that take no arguments, by name.
const PLAIN: &[(&str, Request)] = &[
    ("help", Request::Help),
    ("show status", Request::ShowStatus),
    ("show ports", Request::ShowPorts),
    ("show workers", Request::ShowWorkers),
    ("show counters", Request::ShowCounters),
    ("show neighbors", Request::ShowNeighbors),
    ("show neighbours", Request::ShowNeighbors),
    ("show sessions", Request::ShowSessions),
    ("show services", Request::ShowServices),
    ("show lb", Request::ShowLb),
    ("show accounting", Request::ShowAccounting),
    ("show health", Request::ShowHealth),
    ("show cluster", Request::ShowCluster),
    ("show pools", Request::ShowPools),
    ("show logins", Request::ShowLogins),
    ("show tunnels", Request::ShowTunnels),
    ("subscriber list", Request::SubscriberList),
    ("billing status", Request::BillingStatus),
];

impl Request {
    /// The command's name, its `cmd` on the wire (without words that are arguments).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Help => "help",
            Request::ShowStatus => "show status",
            Request::ShowPorts => "show ports",
            Request::ShowWorkers => "show workers",
            Request::ShowCounters => "show counters",
            Request::ShowNeighbors => "show neighbors",
            Request::ShowSessions => "show sessions",
            Request::ShowServices => "show services",
            Request::ShowLb => "show lb",
            Request::ShowAccounting => "show accounting",
            Request::ShowHealth => "show health",
            Request::ShowCluster => "show cluster",
            Request::ShowPools => "show pools",
            Request::ShowLogins => "show logins",
            Request::ShowTunnels => "show tunnels",
            Request::SubscriberList => "subscriber list",
            Request::BillingStatus => "billing status",
            Request::ShowSession(_) => "show session",
            Request::ShowTunnel(_) => "show tunnel",
            Request::ShowInvoice { .. } => "show invoice",
            Request::SessionAdd(_) => "session add",
            Request::SessionRemove(_) => "session remove",
            Request::SessionUpdate(_) => "session update",
            Request::SessionLogin(_) => "session login",
            Request::SessionLogout(_) => "session logout",
            Request::ServerSet(_) => "server set",
            Request::LbSet(_) => "lb set",
            Request::SubscriberAdd(_) => "subscriber add",
            Request::SubscriberRemove(_) => "subscriber remove",
            Request::SubscriberShow(_) => "subscriber show",
            Request::SubscriberImport(_) => "subscriber import",
            Request::TunnelSessionRemove(_) => "tunnel session remove",
            Request::TunnelSessionLevel(_) => "tunnel session level",
            Request::BillingClosePeriod { .. } => "billing close-period",
            Request::BillingInvoice { .. } => "billing invoice",
            Request::BillingInvoices { .. } => "billing invoices",
            Request::BillingRerate { .. } => "billing rerate",
            Request::BillingImport(_) => "billing import",
        }
    }

    /// The request on the wire.
    pub fn to_line(&self) -> String {
        serde_json::to_string(&Envelope::from(self.clone())).unwrap_or_default()
    }
}

/// Words of `cmd` after the command's own, at most `most`.
fn rest<'a>(words: &'a [&'a str], most: usize) -> Option<Vec<String>> {
    (words.len() <= most).then(|| words.iter().map(|w| w.to_string()).collect())
}

impl From<Request> for Envelope {
    fn from(r: Request) -> Envelope {
        let words = |w: &[Option<&String>]| {
            w.iter()
                .flatten()
                .fold(r.name().to_string(), |s, w| s + " " + w)
        };
        let (cmd, args) = match &r {
            Request::ShowInvoice { account, period }
            | Request::BillingInvoice { account, period } => {
                (words(&[Some(account), period.as_ref()]), Value::Null)
            }
            Request::BillingClosePeriod { period } | Request::BillingInvoices { period } => {
                (words(&[period.as_ref()]), Value::Null)
            }
            Request::BillingRerate { period } => (words(&[Some(period)]), Value::Null),
            _ => (r.name().to_string(), args_of(&r)),
        };
        Envelope { cmd, args }
    }
}

fn to_args<T: Serialize>(a: &T) -> Value {
    serde_json::to_value(a).unwrap_or(Value::Null)
}

fn args_of(r: &Request) -> Value {
    match r {
        Request::ShowSession(a) => to_args(a),
        Request::ShowTunnel(a) => to_args(a),
        Request::SessionAdd(a) => to_args(a),
        Request::SessionRemove(a) => to_args(a),
        Request::SessionUpdate(a) => to_args(a),
        Request::SessionLogin(a) => to_args(a),
        Request::SessionLogout(a) => to_args(a),
        Request::ServerSet(a) => to_args(a),
        Request::LbSet(a) => to_args(a),
        Request::SubscriberAdd(a) => to_args(a),
        Request::SubscriberRemove(a) | Request::SubscriberShow(a) => to_args(a),
        Request::SubscriberImport(a) => to_args(a),
        Request::TunnelSessionRemove(a) | Request::TunnelSessionLevel(a) => to_args(a),
        Request::BillingImport(a) => to_args(a),
        _ => Value::Null,
    }
}

impl TryFrom<Envelope> for Request {
    type Error = String;

    /// The command by its words (extra spaces ignored) and its arguments by their
    /// names; the error says what is wrong in the operator's terms.
    fn try_from(e: Envelope) -> Result<Request, String> {
        let words: Vec<&str> = e.cmd.split_whitespace().collect();
        if words.is_empty() {
            return Err("malformed request: `cmd` is empty".into());
        }
        let cmd = words.join(" ");
        if let Some((_, r)) = PLAIN.iter().find(|(n, _)| *n == cmd) {
            // Arguments of a command that takes none are not looked at.
            return Ok(r.clone());
        }
        fn parse<T: serde::de::DeserializeOwned>(cmd: &str, args: Value) -> Result<T, String> {
            let v = if args.is_null() {
                Value::Object(Default::default())
            } else {
                args
            };
            serde_json::from_value(v).map_err(|e| format!("bad arguments for `{cmd}`: {e}"))
        }
        let a = e.args;
        let billing_err = || {
            let known: Vec<&str> = crate::proto::help::BILLING
                .iter()
                .map(|(c, _)| *c)
                .collect();
            format!("unknown billing command `{cmd}`; try: {}", known.join(", "))
        };
        Ok(match words.as_slice() {
            ["show", "session"] => Request::ShowSession(parse(&cmd, a)?),
            ["show", "tunnel"] => Request::ShowTunnel(parse(&cmd, a)?),
            ["show", "invoice", account, more @ ..] => {
                let mut p = rest(more, 1).ok_or_else(billing_err)?;
                Request::ShowInvoice {
                    account: account.to_string(),
                    period: p.pop(),
                }
            }
            ["session", "add"] => Request::SessionAdd(parse(&cmd, a)?),
            ["session", "remove"] => Request::SessionRemove(parse(&cmd, a)?),
            ["session", "update"] => Request::SessionUpdate(parse(&cmd, a)?),
            ["session", "login"] => Request::SessionLogin(parse(&cmd, a)?),
            ["session", "logout"] => Request::SessionLogout(parse(&cmd, a)?),
            ["server", "set"] => Request::ServerSet(parse(&cmd, a)?),
            ["lb", "set"] => Request::LbSet(parse(&cmd, a)?),
            ["subscriber", "add"] => Request::SubscriberAdd(parse(&cmd, a)?),
            ["subscriber", "remove"] => Request::SubscriberRemove(parse(&cmd, a)?),
            ["subscriber", "show"] => Request::SubscriberShow(parse(&cmd, a)?),
            ["subscriber", "import"] => Request::SubscriberImport(parse(&cmd, a)?),
            // Removed with the IP mode (issue 15 item 5): an older client still sends it.
            ["tunnel", "session", "add"] => return Err(TUNNEL_SESSION_ADD_REMOVED.into()),
            ["tunnel", "session", "remove"] => Request::TunnelSessionRemove(parse(&cmd, a)?),
            ["tunnel", "session", "level"] => Request::TunnelSessionLevel(parse(&cmd, a)?),
            ["tunnel", ..] => {
                return Err(format!(
                    "unknown command `{cmd}`; try tunnel session remove or level"
                ));
            }
            ["billing", "close-period", more @ ..] => Request::BillingClosePeriod {
                period: rest(more, 1).ok_or_else(billing_err)?.pop(),
            },
            ["billing", "invoice", account, more @ ..] => {
                let mut p = rest(more, 1).ok_or_else(billing_err)?;
                Request::BillingInvoice {
                    account: account.to_string(),
                    period: p.pop(),
                }
            }
            ["billing", "invoices", more @ ..] => Request::BillingInvoices {
                period: rest(more, 1).ok_or_else(billing_err)?.pop(),
            },
            ["billing", "rerate", period] => Request::BillingRerate {
                period: period.to_string(),
            },
            ["billing", "import"] => Request::BillingImport(
                serde_json::from_value(a).map_err(|e| {
                    format!(
                        "billing import takes args {{\"records\": [ ... ]}} (and \"import\", \"part\", \"more\" for a file in parts): {e}"
                    )
                })?,
            ),
            ["billing", ..] | ["show", "invoice"] => return Err(billing_err()),
            ["show", what] => {
                return Err(format!(
                    "unknown command `show {what}`; try status, ports, workers, counters, neighbors, sessions, session, services, lb, accounting, health, pools, logins, tunnels or tunnel"
                ));
            }
            _ => {
                return Err(format!(
                    "unknown command `{cmd}`; `help` lists the commands"
                ));
            }
        })
    }
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// True when the command succeeded.
    pub ok: bool,
    /// The answer: one of the reply types of this module, as JSON.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// A successful reply.
    pub fn ok(data: Value) -> Reply {
        Reply {
            ok: true,
            data,
            error: None,
        }
    }

    /// A successful reply carrying `answer` (one of this module's reply types).
    pub fn with<T: Serialize>(answer: &T) -> Reply {
        match serde_json::to_value(answer) {
            Ok(v) => Reply::ok(v),
            Err(e) => Reply::error(format!("cannot encode reply: {e}")),
        }
    }

    /// `Ok(answer)` as a reply, `Err(message)` as an error reply.
    pub fn of<T: Serialize>(r: Result<T, String>) -> Reply {
        match r {
            Ok(a) => Reply::with(&a),
            Err(e) => Reply::error(e),
        }
    }

    /// An error reply.
    pub fn error(msg: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            data: Value::Null,
            error: Some(msg.into()),
        }
    }

    /// The reply as one line (no trailing newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!(r#"{{"ok":false,"error":"cannot encode reply: {e}"}}"#))
    }
}

/// Parses one request line; the error says what is wrong in the operator's terms.
pub fn parse_request(line: &str) -> Result<Request, String> {
    let e: Envelope = serde_json::from_str(line).map_err(|e| {
        format!("malformed request: {e}; expected a JSON object like {{\"cmd\": \"show status\"}}")
    })?;
    Request::try_from(e)
}

// ---- Answers ----

/// `help`: one line per command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HelpLine {
    /// The command.
    pub command: String,
    /// What it does.
    pub description: String,
}

/// `show status`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The daemon's version.
    pub version: String,
    /// Its process id.
    pub pid: u32,
    /// Where its config came from.
    pub config: String,
    /// The control socket.
    pub socket: String,
    /// Seconds since it started.
    pub uptime_s: u64,
    /// Workers.
    pub workers: u64,
    /// The access port's backend.
    pub backend: String,
    /// Packets received, both sides.
    pub rx_packets: u64,
    /// Packets sent, both sides.
    pub tx_packets: u64,
    /// Packets dropped.
    pub drops: u64,
    /// Neighbour entries.
    pub neighbors: u64,
}

/// `show ports`: one side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// `access` or `core`.
    pub side: String,
    /// Backend.
    pub backend: String,
    /// Interface (af_packet, af_xdp).
    pub interface: Option<String>,
    /// MAC.
    pub mac: String,
    /// Address/prefix.
    pub address: String,
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Dropped by the kernel/NIC, rx ring full.
    pub rx_dropped: u64,
    /// Dropped at the head of the rx ring under overload.
    pub rx_late: u64,
    /// Longer than a buffer.
    pub rx_too_big: u64,
    /// No free buffer.
    pub rx_no_buffer: u64,
    /// Left to the kernel by AF_XDP's program.
    pub rx_to_kernel: u64,
    /// The longest wait of a frame in the rx ring.
    pub rx_max_wait_ms: f64,
    /// Send errors.
    pub tx_errors: u64,
    /// Why frames were lost, in words.
    pub rx_loss: Option<String>,
}

/// `show workers`: one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    /// Index.
    pub worker: u16,
    /// The core it is pinned to.
    pub cpu: Option<u64>,
    /// Whether it has reported.
    pub reported: bool,
    /// Its report (absent until it has reported).
    #[serde(flatten)]
    pub report: Option<WorkerNumbers>,
}

/// What a worker reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerNumbers {
    /// Polls.
    pub polls: u64,
    /// Polls that received something.
    pub busy_polls: u64,
    /// Their share, percent, one decimal.
    pub busy_pct: f64,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Packets dropped.
    pub drops: u64,
    /// Packets held for ARP.
    pub held: u64,
    /// Neighbour entries.
    pub neighbors: u64,
    /// Sessions.
    pub sessions: u64,
    /// Flows.
    pub flows: u64,
    /// Age of the report.
    pub report_age_ms: u64,
}

/// Packets and bytes of one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideCounters {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// Both sides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sides {
    /// Access.
    pub access: SideCounters,
    /// Core.
    pub core: SideCounters,
}

/// What the control thread counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlCounters {
    /// Frames punted to it.
    pub punts: u64,
    /// Of them, malformed.
    pub punts_malformed: u64,
    /// Worker events.
    pub events: u64,
    /// ARP requests sent.
    pub arp_requests: u64,
    /// Neighbours installed.
    pub neighbors_installed: u64,
    /// Flow-limit events.
    pub flow_limits: u64,
    /// NAT port exhaustion events.
    pub nat_ports_exhausted: u64,
    /// Commands sent again (ring full).
    pub command_retries: u64,
    /// Commands dropped.
    pub commands_dropped: u64,
    /// Injected frames dropped.
    pub injects_dropped: u64,
}

/// `show counters` (also `tollgate replay`'s).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Per side.
    pub sides: Sides,
    /// Drops by reason (every reason).
    pub drops: BTreeMap<String, u64>,
    /// Their sum.
    pub drops_total: u64,
    /// Engine counters by name.
    pub engine: BTreeMap<String, u64>,
    /// The control thread's.
    pub control: ControlCounters,
    /// PPPoE discovery and PPP: the core's drops, discovery frames, drops and refusals,
    /// PPP drops, logins, sessions and ends by cause (only `pppoe_disabled` when PPPoE is
    /// off).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pppoe: BTreeMap<String, u64>,
    /// With `[ipv6]` on: /64s, IPv6-first logins, the next hop, and both sides' ND
    /// messages and drops (docs/ipoe.md).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ipv6: BTreeMap<String, u64>,
    /// The DHCPv4 server (issue 16): the core's drops, messages, the server's drops and
    /// refusals, logins, sessions and ends by cause (only `dhcp_disabled` when DHCP is
    /// off).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dhcp: BTreeMap<String, u64>,
}

/// `show neighbors`: one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbor {
    /// Its address.
    pub address: String,
    /// `access` or `core`.
    pub side: String,
    /// Its MAC, once known.
    pub mac: Option<String>,
    /// `incomplete`, `reachable`, `probing`, `failed`, `static`.
    pub state: String,
    /// Seconds in that state.
    pub age_s: u64,
}

/// A session's counters (`tx`: what the subscriber sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCounters {
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
}

/// `show session`: an open session, one that ended recently, or neither.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state")]
pub enum SessionView {
    /// Open.
    #[serde(rename = "open")]
    Open(Box<OpenSession>),
    /// Ended recently.
    #[serde(rename = "ended")]
    Ended(EndedSession),
    /// A PPPoE subscriber whose PPP this LAC switches to an LNS (issue 15): no gateway
    /// session; its counters are the L2TP session's (IPv4 and IPv6, IP total length).
    #[serde(rename = "switched")]
    Switched(Box<LacCallView>),
    /// Not known.
    #[serde(rename = "unknown")]
    Unknown {
        /// Its id.
        session: u32,
    },
}

/// An open session (`show sessions` lists them, each `"state": "open"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenSession {
    /// Its id.
    pub session: u32,
    /// SES-1 state.
    pub ses_state: Option<String>,
    /// Acct-Session-Id.
    pub acct_session_id: Option<String>,
    /// User name.
    pub user: String,
    /// Address.
    pub address: String,
    /// MAC (given or learnt).
    pub mac: Option<String>,
    /// Channel.
    pub channel: u32,
    /// The worker owning it.
    pub worker: u16,
    /// Start, RFC 3339.
    pub start: String,
    /// Seconds open.
    pub age_s: u64,
    /// Declared uplink bandwidth.
    pub bandwidth_up: u64,
    /// Declared downlink bandwidth.
    pub bandwidth_down: u64,
    /// Services it may use.
    pub services: Vec<String>,
    /// Counters (null if the worker did not answer): both families.
    pub counters: Option<SessionCounters>,
    /// The IPv4 and IPv6 shares of `counters` (issue 16), for a session with (or that
    /// had) an IPv6 /64; absent otherwise (all of `counters` is IPv4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters_ipv4: Option<SessionCounters>,
    /// See `counters_ipv4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters_ipv6: Option<SessionCounters>,
    /// Its IPv6 /64 (`[ipv6]` on, IPoE sessions), e.g. `2001:db8:100::/64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_prefix: Option<String>,
    /// Its DHCPv6 IA_NA address, when bound, e.g. `2001:db8:100::1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    /// Its DHCPv6 IA_PD delegated prefix, when bound, e.g. `2001:db8:200::/56`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_prefix: Option<String>,
    /// A PPPoE subscriber's PPP state, flattened into the answer.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub ppp: Option<PppFields>,
    /// An LNS subscriber's L2TP call and PPP state, flattened into the answer.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub l2tp_call: Option<L2tpCallFields>,
}

/// A session that ended recently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndedSession {
    /// Its id.
    pub session: u32,
    /// User name.
    pub user: String,
    /// Address.
    pub address: String,
    /// MAC.
    pub mac: Option<String>,
    /// Channel.
    pub channel: u32,
    /// Start, RFC 3339.
    pub start: String,
    /// Stop, RFC 3339.
    pub stop: String,
    /// Why it ended.
    pub cause: String,
    /// Final counters.
    pub counters: SessionCounters,
}

/// `show services`: one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Name.
    pub service: String,
    /// Virtual address.
    pub vip: String,
    /// `tcp`, `udp`, `icmp`.
    pub protocol: String,
    /// Port.
    pub port: u16,
    /// Balancing policy.
    pub policy: String,
    /// Session type.
    pub session_type: String,
    /// Real servers.
    pub servers: Vec<Server>,
}

/// A real server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// Index in the service.
    pub server: u64,
    /// Address.
    pub address: String,
    /// Port.
    pub port: u16,
    /// `up` or `down`.
    pub state: String,
    /// Weight.
    pub weight: u64,
    /// Priority.
    pub priority: u64,
    /// Response time, µs.
    pub response_us: u64,
    /// CPU load, percent.
    pub cpu_load: u64,
}

/// `show lb`: one range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbRange {
    /// First source address.
    pub first: String,
    /// Last.
    pub last: String,
    /// The MAC in use (null: all down).
    pub chosen: Option<String>,
    /// Targets, primary first.
    pub targets: Vec<LbTarget>,
}

/// A load-balancing target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbTarget {
    /// Its MAC.
    pub mac: String,
    /// `up` or `down`.
    pub state: String,
}

/// `show pools`: one pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Name.
    pub pool: String,
    /// Ranges.
    pub ranges: Vec<PoolRange>,
}

/// A pool's range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRange {
    /// First address.
    pub first: String,
    /// Last address.
    pub last: String,
    /// Addresses.
    pub size: u64,
    /// Assigned now.
    pub assigned: u64,
    /// Its node.
    pub node: Option<String>,
    /// The node's state.
    pub node_state: Option<String>,
}

/// `show logins`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logins {
    /// Sessions by SES-1 state.
    pub sessions: SesStates,
    /// Logins under way.
    pub logins_pending: u64,
    /// Logins.
    pub logins: u64,
    /// Accepted.
    pub accepted: u64,
    /// Rejected.
    pub rejected: u64,
    /// Authentication unavailable.
    pub unavailable: u64,
    /// Busy.
    pub busy: u64,
    /// Failed otherwise.
    pub failed: u64,
    /// Mobiles that found their session.
    pub resumed: u64,
    /// Sessions ended by simultaneous-login rules.
    pub login_victims: u64,
    /// Accounting records.
    pub accounting: AccountingCounts,
    /// Act -> dormant transitions.
    pub dormant_transitions: u64,
}

/// Sessions by SES-1 state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SesStates {
    /// Active.
    pub act: u64,
    /// Dormant.
    pub dormant: u64,
}

/// Accounting records of `show logins`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountingCounts {
    /// Starts.
    pub starts: u64,
    /// Interims.
    pub interims: u64,
    /// Stops.
    pub stops: u64,
    /// Spooled (the daemon's).
    pub spooled: Option<u64>,
    /// Sent.
    pub sent: Option<u64>,
    /// Done.
    pub done: Option<u64>,
    /// Rounds of last-known counters.
    pub last_known_rounds: u64,
    /// Last-known counters handed to the spool.
    pub last_known: u64,
}

/// `show health`: one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthTarget {
    /// Name.
    pub target: String,
    /// Address.
    pub address: String,
    /// `icmp`, `tcp:PORT`, `http:PORT/PATH`.
    pub check: String,
    /// `up`, `down`, `unknown`.
    pub state: String,
    /// Smoothed response time.
    pub rtt_us: Option<u64>,
    /// Checks passed.
    pub passed: u64,
    /// Checks failed.
    pub failed: u64,
    /// The last failure.
    pub last_error: Option<String>,
}

/// `show accounting`: the authentication backend, the spool, the RADIUS clients and the
/// CoA listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// `local` or `radius`.
    pub auth: String,
    /// The accounting spool.
    pub spool: SpoolView,
    /// Each authentication server and whether it is held down.
    pub radius_auth_servers: Vec<RadiusServer>,
    /// Each accounting server.
    pub radius_acct_servers: Vec<RadiusServer>,
    /// The authentication client, when RADIUS authenticates.
    pub radius_auth: Option<RadiusClient>,
    /// The accounting client, when records go to RADIUS.
    pub radius_acct: Option<RadiusClient>,
    /// The CoA / Disconnect listener, when one listens.
    pub coa: Option<CoaView>,
    /// Delivery to the cluster's PostgreSQL, with `[database]` (left out without it, so
    /// answers of older daemons still read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseView>,
    /// Delivery of usage records to the rating ledger, when rating is on (left out
    /// without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerView>,
}

/// Delivery of usage records from the spool to the rating ledger in `show accounting`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerView {
    /// The ledger: its file, or `USER@HOST:PORT/DBNAME`.
    pub target: String,
    /// Usage records waiting in the spool for the ledger.
    pub pending: u64,
    /// Records stored in the ledger (this run).
    pub stored: u64,
    /// Records it already had (delivered again).
    pub duplicates: u64,
    /// Records it refused for good (a different record under the id): logged, let go.
    pub refused: u64,
    /// A dead node's usage records of sessions its restart closed that a surviving node
    /// had already taken over and rated: the ledger keeps the survivor's (a WARN each).
    #[serde(default)]
    pub superseded: u64,
    /// Batches that failed (the ledger down or restarting): retried after the back-off.
    pub failed_batches: u64,
}

/// Delivery of accounting records to the cluster's PostgreSQL in `show accounting`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseView {
    /// `USER@HOST:PORT/DBNAME`.
    pub target: String,
    /// Records committed there (this run).
    pub committed: u64,
    /// Records it already had (delivered again).
    pub duplicates: u64,
    /// Records not taken (the database down or restarting): retried after the back-off.
    pub retries: u64,
    /// Batches that failed.
    pub failed_batches: u64,
    /// Connections made.
    pub connects: u64,
    /// Records of sessions a surviving node took over while this node was away: not
    /// stored, not sent to RADIUS (the survivor closed those sessions).
    #[serde(default)]
    pub superseded: u64,
    /// Stops this node spooled for sessions it took over from dead nodes.
    #[serde(default)]
    pub takeover_stops: u64,
}

/// The accounting spool in `show accounting`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolView {
    /// Records waiting to be sent.
    pub pending: u64,
    /// Records sent and not yet acknowledged.
    pub in_flight: u64,
    /// Records committed.
    pub enqueued: u64,
    /// Records acknowledged.
    pub acked: u64,
    /// Sends that failed.
    pub failed_attempts: u64,
    /// Records recovered at start.
    pub recovered: u64,
    /// Records not yet committed (the spool failed).
    pub unsaved: u64,
    /// Records set aside (no server took them).
    pub set_aside: u64,
    /// Records sent without attributes that did not fit.
    pub left_out: u64,
    /// Open sessions whose last-known counters are kept.
    pub last_known: u64,
    /// Commits of last-known counters.
    pub last_known_commits: u64,
    /// The last such commit's duration.
    pub last_known_commit_us: u64,
    /// Commits that failed.
    pub commit_errors: u64,
}

/// A RADIUS server's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadiusServer {
    /// Address and port.
    pub server: String,
    /// `up` or `held_down`.
    pub state: String,
}

/// A RADIUS client's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadiusClient {
    /// Requests sent (first transmissions).
    pub requests: u64,
    /// Replies accepted.
    pub replies: u64,
    /// Retransmissions.
    pub retransmits: u64,
    /// Requests no server answered.
    pub failed: u64,
    /// Replies dropped, by reason.
    pub replies_dropped: RepliesDropped,
    /// Access-Challenges received (authentication only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenges: Option<u64>,
}

/// A RADIUS client's dropped replies by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepliesDropped {
    /// Response Authenticator wrong.
    pub bad_authenticator: u64,
    /// Message-Authenticator wrong.
    pub bad_message_authenticator: u64,
    /// Message-Authenticator required and missing.
    pub missing_message_authenticator: u64,
    /// Not a RADIUS packet.
    pub malformed: u64,
    /// A code that does not answer the request.
    pub wrong_code: u64,
    /// From an address that is not a server.
    pub unknown_source: u64,
    /// Answering no outstanding request.
    pub unmatched: u64,
}

/// The CoA / Disconnect listener in `show accounting`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoaView {
    /// The address it listens on.
    pub listen: Option<String>,
    /// Requests taken.
    pub requests: u64,
    /// ACKs sent.
    pub acks: u64,
    /// NAKs sent.
    pub naks: u64,
    /// Requests dropped (unknown client, bad authenticators, malformed, stale, ...).
    pub dropped: u64,
    /// Duplicates answered from the replay cache.
    pub duplicates: u64,
    /// Requests dropped because the replay cache was full.
    pub cache_full: u64,
}

/// `session add` and `session update`: the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionId {
    /// Its id.
    pub session: u32,
}

/// `session remove`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRemoved {
    /// Its id.
    pub session: u32,
    /// The cause its Stop carries.
    pub cause: String,
}

/// `session logout`: by session, or by user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LoggedOut {
    /// By session.
    Sessions {
        /// The sessions ended.
        sessions: Vec<u32>,
        /// The cause.
        cause: String,
    },
    /// Every session of a user.
    User {
        /// The user.
        user: String,
        /// How many ended.
        ended: u64,
        /// The cause.
        cause: String,
    },
}

/// `session login`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedIn {
    /// The session.
    pub session: u32,
    /// The user.
    pub user: String,
    /// Its address.
    pub address: String,
    /// A returning mobile found its session.
    pub resumed: bool,
    /// Acct-Session-Id.
    pub acct_session_id: Option<String>,
    /// The cluster node that serves the session when the login was placed on another
    /// node (`[cluster] placement = "source-range"`): that node opens it, so `session`
    /// is 0 and `acct_session_id` empty here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// `server set`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSet {
    /// The service.
    pub service: String,
    /// The server's index.
    pub server: u16,
}

/// `tunnel session add|level`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelLevel {
    /// The tunnelled subscriber.
    pub session: u32,
    /// Its level, bit/s.
    pub level: u64,
}

/// `tunnel session remove`: a subscriber (LAC), or a session a LAC opened (LNS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TunnelRemoved {
    /// LNS: our session id and tunnel.
    Session {
        /// Our session id.
        session: u16,
        /// Our tunnel id.
        tunnel: u16,
        /// `lns`.
        role: String,
    },
    /// LAC: the tunnelled subscriber.
    Subscriber {
        /// Its id.
        session: u32,
    },
}

/// `show tunnels`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tunnels {
    /// Our host name.
    pub host_name: String,
    /// Whether tunnels are accepted (LNS).
    pub accept: bool,
    /// Nothing is changing.
    pub settled: bool,
    /// Lines.
    pub lines: Vec<Line>,
    /// Customers.
    pub customers: Vec<Customer>,
    /// Tunnels.
    pub tunnels: Vec<TunnelRow>,
    /// Tunnelled subscribers without a session.
    pub waiting: Vec<Waiting>,
    /// Engine counters.
    pub stats: L2tpStats,
}

/// A line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Name.
    pub line: String,
    /// Peer address:port.
    pub peer: String,
    /// Live tunnels on it.
    pub tunnels: u64,
    /// At most.
    pub max_tunnels: u64,
    /// Sessions per tunnel.
    pub tunnel_sessions: u64,
    /// Bandwidth per tunnel.
    pub tunnel_bandwidth: u64,
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Name.
    pub customer: String,
    /// Billing account.
    pub account: String,
    /// Whether its sessions are consolidated.
    pub consolidate: bool,
    /// Tunnels it uses now.
    pub tunnels: u64,
    /// Lines it uses now.
    pub lines: u64,
    /// Its tunnelled subscribers.
    pub sessions: u64,
}

/// A tunnel with its load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelRow {
    /// Our id.
    pub tunnel: u16,
    /// The peer's id.
    pub peer_tunnel: u16,
    /// `lac` or `lns`.
    pub role: String,
    /// Control connection state.
    pub state: String,
    /// Peer address:port.
    pub peer: String,
    /// Our address.
    pub local: String,
    /// The peer's host name.
    pub peer_host: String,
    /// Its line.
    pub line: Option<String>,
    /// Its customer.
    pub customer: Option<String>,
    /// Sessions.
    pub sessions: u64,
    /// At most.
    pub max_sessions: u64,
    /// Sum of its sessions' levels.
    pub bandwidth: u64,
    /// At most.
    pub max_bandwidth: u64,
    /// Seconds since it was created.
    pub age_s: u64,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// Consolidation of its sessions (a LAC's tunnel of the administration table): `on`,
    /// `off: the LNS is not a Tollgate` (no switchover with another vendor's LNS),
    /// `pending` until the LNS answered; `-` for other tunnels.
    #[serde(default)]
    pub consolidation: String,
}

/// A tunnelled subscriber waiting for a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// Its administration-table id (what `tunnel session level` takes).
    #[serde(default)]
    pub call: u32,
    /// Its address.
    pub address: String,
    /// Its user name.
    pub user: String,
    /// `connecting` or `waiting`.
    pub state: String,
    /// Failures in a row.
    pub failures: u64,
    /// The redial wait.
    pub retry_in_ms: Option<u64>,
}

/// L2TP engine counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct L2tpStats {
    pub received: u64,
    pub malformed: u64,
    pub unknown_tunnel: u64,
    pub wrong_peer: u64,
    pub tunnels_refused: u64,
    pub tunnel_limit: u64,
    pub session_limit: u64,
    pub redials: u64,
    pub auth_failures: u64,
    pub unexpected: u64,
    pub unknown_mandatory: u64,
    pub tunnels_up: u64,
    pub tunnels_down: u64,
    pub tunnels_dead: u64,
    /// A line's LNS did not bring its tunnel up: the line went on to its next LNS.
    #[serde(default)]
    pub lns_failovers: u64,
    pub sessions_up: u64,
    pub sessions_down: u64,
    pub moves_started: u64,
    pub moves_done: u64,
    pub moves_failed: u64,
    /// Tunnels to an LNS that is not a Tollgate: consolidation off for them.
    #[serde(default)]
    pub consolidation_off: u64,
    /// LNS: calls with the Subscriber Address AVP refused (the removed IP mode).
    #[serde(default)]
    pub ip_calls_refused: u64,
    pub level_changes: u64,
    pub fast_path_refused: u64,
}

/// `show tunnel`: one tunnel, its control connection and sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelDetail {
    /// The tunnel's row.
    #[serde(flatten)]
    pub row: TunnelRow,
    /// Its control connection.
    pub control: ControlChannel,
    /// Its sessions.
    pub session_list: Vec<TunnelSession>,
}

/// The tunnel as its JSON (for messages and logs).
impl std::fmt::Display for TunnelDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

/// A tunnel's control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ControlChannel {
    pub ns: u16,
    pub nr: u16,
    pub unacked: u64,
    pub peer_window: u64,
    pub sent: u64,
    pub retransmits: u64,
    pub zlbs: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub idle_s: u64,
    pub established_s: Option<u64>,
}

/// A session of a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelSession {
    /// Our id.
    pub session: u16,
    /// LAC: the call's administration-table id, what `tunnel session level` takes
    /// (absent for an LNS's sessions and sessions being torn down).
    #[serde(default)]
    pub call: Option<u32>,
    /// The peer's id.
    pub peer_session: u16,
    /// State.
    pub state: String,
    /// The subscriber's address.
    pub subscriber: Option<String>,
    /// Its user name.
    pub user: Option<String>,
    /// Service level.
    pub level: u64,
    /// Measured rate.
    pub rate_bps: Option<u64>,
    /// The session it replaces (a move).
    pub replaces: Option<u16>,
    /// Packets encapsulated.
    pub encap_packets: u64,
    /// Bytes encapsulated.
    pub encap_bytes: u64,
    /// Packets decapsulated.
    pub decap_packets: u64,
    /// Bytes decapsulated.
    pub decap_bytes: u64,
    /// Seconds since it was created.
    pub age_s: u64,
}

/// `billing status`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingStatus {
    /// The database.
    pub database: String,
    /// Stored records by kind.
    pub records: BTreeMap<String, u64>,
    /// Closed periods.
    pub closed_periods: Vec<String>,
    /// Tariff names.
    pub tariffs: Vec<String>,
    /// Accounts.
    pub accounts: u64,
    /// How bandwidth is charged.
    pub bandwidth_method: Value,
    /// Fixed offset of local time.
    pub timezone_offset_minutes: i32,
    /// IANA zone.
    pub time_zone: Option<String>,
    /// Currency.
    pub currency: String,
}

/// `billing invoices`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoices {
    /// The period is open.
    pub provisional: bool,
    /// Every account's.
    pub invoices: Vec<tollgate_control_core::rating::Invoice>,
}

/// `billing import` of a part that is held until the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportHeld {
    /// The import.
    pub import: String,
    /// The part.
    pub part: u32,
    /// Always true.
    pub held: bool,
}

/// `billing import`: stored, or a part held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Imported {
    /// A part held.
    Held(ImportHeld),
    /// Stored.
    Stored(crate::rating::ImportReport),
}

/// `subscriber add`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberAdded {
    /// The user.
    pub user: String,
    /// It replaced one.
    pub replaced: bool,
}

/// `subscriber import`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribersImported {
    /// The file.
    pub file: String,
    /// Added.
    pub added: u64,
    /// Replaced.
    pub replaced: u64,
}

/// Any answer's data, typed by the request that asked for it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
#[allow(missing_docs)]
pub enum Answer {
    Help(Vec<HelpLine>),
    Status(Status),
    Ports(Vec<Port>),
    Workers(Vec<Worker>),
    Counters(Counters),
    Neighbors(Vec<Neighbor>),
    Sessions(Vec<SessionView>),
    Session(Box<SessionView>),
    Services(Vec<Service>),
    Lb(Vec<LbRange>),
    Accounting(Box<Accounting>),
    Health(Vec<HealthTarget>),
    Cluster(Box<crate::database::cluster::ClusterView>),
    Pools(Vec<Pool>),
    Logins(Box<Logins>),
    Tunnels(Box<Tunnels>),
    Tunnel(Box<TunnelDetail>),
    SessionId(SessionId),
    SessionRemoved(SessionRemoved),
    LoggedIn(LoggedIn),
    LoggedOut(LoggedOut),
    ServerSet(ServerSet),
    LbSet(LbChange),
    SubscriberAdded(SubscriberAdded),
    SubscriberRemoved(UserArg),
    Subscriber(Box<crate::store::SubscriberView>),
    Subscribers(Vec<crate::store::SubscriberView>),
    SubscribersImported(SubscribersImported),
    TunnelLevel(TunnelLevel),
    TunnelRemoved(TunnelRemoved),
    BillingStatus(Box<BillingStatus>),
    Closed(Box<crate::rating::CloseReport>),
    Invoice(Box<crate::rating::InvoiceAnswer>),
    Invoices(Invoices),
    Rerated(Box<crate::rating::RerateReport>),
    Imported(Imported),
}

impl Answer {
    /// Reads the data of a successful reply to `req`.
    pub fn parse(req: &Request, data: Value) -> Result<Answer, serde_json::Error> {
        use serde_json::from_value as f;
        Ok(match req {
            Request::Help => Answer::Help(f(data)?),
            Request::ShowStatus => Answer::Status(f(data)?),
            Request::ShowPorts => Answer::Ports(f(data)?),
            Request::ShowWorkers => Answer::Workers(f(data)?),
            Request::ShowCounters => Answer::Counters(f(data)?),
            Request::ShowNeighbors => Answer::Neighbors(f(data)?),
            Request::ShowSessions => Answer::Sessions(f(data)?),
            Request::ShowSession(_) => Answer::Session(f(data)?),
            Request::ShowServices => Answer::Services(f(data)?),
            Request::ShowLb => Answer::Lb(f(data)?),
            Request::ShowAccounting => Answer::Accounting(f(data)?),
            Request::ShowHealth => Answer::Health(f(data)?),
            Request::ShowCluster => Answer::Cluster(f(data)?),
            Request::ShowPools => Answer::Pools(f(data)?),
            Request::ShowLogins => Answer::Logins(f(data)?),
            Request::ShowTunnels => Answer::Tunnels(f(data)?),
            Request::ShowTunnel(_) => Answer::Tunnel(f(data)?),
            Request::SessionAdd(_) | Request::SessionUpdate(_) => Answer::SessionId(f(data)?),
            Request::SessionRemove(_) => Answer::SessionRemoved(f(data)?),
            Request::SessionLogin(_) => Answer::LoggedIn(f(data)?),
            Request::SessionLogout(_) => Answer::LoggedOut(f(data)?),
            Request::ServerSet(_) => Answer::ServerSet(f(data)?),
            Request::LbSet(_) => Answer::LbSet(f(data)?),
            Request::SubscriberAdd(_) => Answer::SubscriberAdded(f(data)?),
            Request::SubscriberRemove(_) => Answer::SubscriberRemoved(f(data)?),
            Request::SubscriberShow(_) => Answer::Subscriber(f(data)?),
            Request::SubscriberList => Answer::Subscribers(f(data)?),
            Request::SubscriberImport(_) => Answer::SubscribersImported(f(data)?),
            Request::TunnelSessionLevel(_) => Answer::TunnelLevel(f(data)?),
            Request::TunnelSessionRemove(_) => Answer::TunnelRemoved(f(data)?),
            Request::BillingStatus => Answer::BillingStatus(f(data)?),
            Request::BillingClosePeriod { .. } => Answer::Closed(f(data)?),
            Request::ShowInvoice { .. } | Request::BillingInvoice { .. } => {
                Answer::Invoice(f(data)?)
            }
            Request::BillingInvoices { .. } => Answer::Invoices(f(data)?),
            Request::BillingRerate { .. } => Answer::Rerated(f(data)?),
            Request::BillingImport(_) => Answer::Imported(f(data)?),
        })
    }
}

#[cfg(test)]
mod tests;
