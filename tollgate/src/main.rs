//! `tollgate`: the subscriber gateway. This crate parses the command line and hands each
//! command to the library that does it: `tollgate-control` (run, replay, ctl, config),
//! `tollgate-tools` (pktgen, bench); [`billing`] and [`subscriber`] are the offline
//! commands on the rating database and the subscriber store.

mod billing;
mod subscriber;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tollgate_control::config::{Config, DEFAULT_CONFIG, LimitsConfig, Mac, Rate, StaticSubscriber};
use tollgate_control::ctl::proto::{self, Answer, Envelope, Request};
use tollgate_control::ctl::{client, render};
use tollgate_control::engine;
use tollgate_control::replay::{ReplayFiles, replay};
use tollgate_dataplane::port::af_packet::AfPacketError;

/// Tollgate: a userspace poll-mode subscriber gateway.
///
/// Start with `make run` (the lab), or `tollgate run --config FILE`; inspect a running
/// gateway with `tollgate ctl show status`. docs/config.md lists every config key and
/// docs/ctl.md every control command.
#[derive(Parser, Debug)]
#[command(name = "tollgate", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the gateway in the foreground until SIGINT or SIGTERM.
    Run {
        /// Config file; without it the embedded default (the lab) is used.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Start a new accounting spool when the one this gateway created is missing,
        /// empty or damaged (the old files are kept as SPOOL.lost-UNIXTIME*); without
        /// it, that is an error at start (docs/aaa.md).
        #[arg(long)]
        spool_afresh: bool,
    },
    /// Validate a config file without starting anything; errors name the key and line.
    CheckConfig {
        /// The config file.
        file: PathBuf,
    },
    /// Print the embedded default config (a starting point for your own).
    DefaultConfig,
    /// Run the pipeline over capture files, the capture timestamps being the clock, and
    /// print the counters.
    Replay {
        /// Config file (ports' backends are ignored: both sides read and write pcap).
        #[arg(long, short)]
        config: PathBuf,
        /// Frames arriving on the access port (pcap or pcapng, Ethernet).
        #[arg(long)]
        access_in: PathBuf,
        /// Frames arriving on the core port.
        #[arg(long)]
        core_in: Option<PathBuf>,
        /// Where frames sent on the access port are written (pcap, nanosecond stamps).
        #[arg(long)]
        access_out: PathBuf,
        /// Where frames sent on the core port are written.
        #[arg(long)]
        core_out: PathBuf,
        /// Keep the clock running this long after the last frame, so timers fire.
        #[arg(long, default_value_t = 0)]
        linger_ms: u64,
        /// Write flow records here (default: subscribers.flow_records of the config).
        #[arg(long)]
        flow_records: Option<PathBuf>,
        /// Write ended sessions here (default: subscribers.session_log of the config).
        #[arg(long)]
        session_log: Option<PathBuf>,
        /// Print the counters as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Talk to a running gateway over its control socket.
    #[command(disable_help_subcommand = true)]
    Ctl {
        /// Control socket [default: control.socket of --config, else /run/tollgate/ctl.sock]
        #[arg(long, env = "TOLLGATE_SOCKET")]
        socket: Option<PathBuf>,
        /// Read the socket path from this config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print the answer as JSON, for scripts.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: CtlCmd,
    },
    /// Rating and invoices from the rating database, without the daemon (docs/rating.md).
    Billing(billing::BillingArgs),
    /// Manage the local subscriber store offline (add, remove, show, list, import).
    Subscriber(subscriber::SubscriberArgs),
    /// Measure the full pipeline on in-memory ports, one worker, at 1k to 10M flows:
    /// Mpps, ns/packet, and state per session and per flow (docs/PERFORMANCE.md).
    Bench(tollgate_tools::bench::BenchArgs),
    /// Generate subscriber traffic through a gateway and measure what comes back: sent,
    /// received, lost, Mpps, latency (both ends: subscribers and servers).
    Pktgen(Box<tollgate_tools::pktgen::PktgenArgs>),
}

#[derive(Subcommand, Debug)]
enum CtlCmd {
    /// Show state and counters.
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
    /// Open, end or change subscriber sessions.
    Session {
        #[command(subcommand)]
        action: Box<SessionCmd>,
    },
    /// Change a real server of a service: state or metrics.
    Server {
        #[command(subcommand)]
        action: ServerCmd,
    },
    /// Change a load-balancing target's state.
    Lb {
        #[command(subcommand)]
        action: LbCmd,
    },
    /// Calls in L2TP tunnels: remove, set the service level.
    Tunnel {
        #[command(subcommand)]
        action: TunnelCmd,
    },
    /// Rating: close a period, invoices, re-rating, import (docs/ctl.md).
    #[command(subcommand)]
    Billing(billing::CtlBilling),
    /// The daemon's local subscriber store: add, remove, show, list, import.
    #[command(subcommand)]
    Subscriber(subscriber::SubscriberCmd),
    /// List the commands the daemon knows.
    Help,
    /// Send a raw JSON request line, e.g. '{"cmd":"show status"}'.
    Raw {
        /// The request.
        json: String,
    },
}

#[derive(Subcommand, Debug)]
enum ShowWhat {
    /// Version, uptime, config, totals.
    Status,
    /// Per port: backend, MAC, address, packets, bytes.
    Ports,
    /// Per worker: core, polls, busy share, packets, drops, sessions, flows.
    Workers,
    /// Packets per side, drops by reason, engine and control counters.
    Counters,
    /// The neighbour (ARP) table.
    Neighbors,
    /// Open sessions with their counters.
    Sessions,
    /// One session, open or recently ended.
    Session {
        /// Its id or address.
        session: String,
    },
    /// Services, their real servers, states and metrics.
    Services,
    /// Load-balancing ranges and their targets.
    Lb,
    /// Authentication backend, accounting spool, RADIUS servers, CoA listener.
    Accounting,
    /// Health-checked servers and gateway nodes.
    Health,
    /// The cluster's nodes (PostgreSQL backend): state, last heartbeat, sessions, pool
    /// ranges in use.
    Cluster,
    /// Address pools: ranges, nodes, assigned addresses.
    Pools,
    /// Login and accounting counters, sessions by state.
    Logins,
    /// L2TP: lines, customers, tunnels (the administration table).
    Tunnels,
    /// One L2TP tunnel: control connection and sessions.
    Tunnel {
        /// Its id (ours).
        tunnel: u16,
    },
    /// An account's invoice (rating).
    Invoice {
        /// The billing account.
        account: String,
        /// The period, e.g. 2026-11 (default: the current one).
        period: Option<String>,
    },
}

/// Disconnect conditions (DISC-1), as flags.
#[derive(clap::Args, Debug, Default)]
struct LimitArgs {
    /// A: maximum session time, seconds.
    #[arg(long)]
    session_timeout: Option<u64>,
    /// B: idle time, seconds.
    #[arg(long)]
    idle_timeout: Option<u64>,
    /// B per server: the server whose silence counts...
    #[arg(long)]
    idle_server: Option<std::net::Ipv4Addr>,
    /// ... and its idle time, seconds.
    #[arg(long)]
    idle_server_timeout: Option<u64>,
    /// C: bytes the subscriber may send.
    #[arg(long)]
    volume_tx_bytes: Option<u64>,
    /// C: bytes it may receive.
    #[arg(long)]
    volume_rx_bytes: Option<u64>,
    /// C: bytes both ways.
    #[arg(long)]
    volume_total_bytes: Option<u64>,
    /// C: packets it may send.
    #[arg(long)]
    volume_tx_packets: Option<u64>,
    /// C: packets it may receive.
    #[arg(long)]
    volume_rx_packets: Option<u64>,
    /// E: share of the path, percent.
    #[arg(long)]
    rate_percent: Option<u8>,
    /// E: the path's rate (default: the downlink bandwidth), e.g. 100M.
    #[arg(long)]
    rate_path: Option<String>,
    /// E: window, milliseconds.
    #[arg(long)]
    rate_window_ms: Option<u32>,
}

impl LimitArgs {
    /// The conditions these flags give.
    fn into_limits(self) -> Result<LimitsConfig, String> {
        Ok(LimitsConfig {
            session_timeout_s: self.session_timeout,
            idle_timeout_s: self.idle_timeout,
            idle_server: self.idle_server,
            idle_server_timeout_s: self.idle_server_timeout,
            volume_tx_bytes: self.volume_tx_bytes,
            volume_rx_bytes: self.volume_rx_bytes,
            volume_total_bytes: self.volume_total_bytes,
            volume_tx_packets: self.volume_tx_packets,
            volume_rx_packets: self.volume_rx_packets,
            rate_percent: self.rate_percent,
            rate_path: rate("--rate-path", self.rate_path)?,
            rate_window_ms: self.rate_window_ms,
        })
    }
}

/// A rate flag's value (`10M`), the error naming the flag.
fn rate(flag: &str, v: Option<String>) -> Result<Option<Rate>, String> {
    v.map(|v| v.parse::<Rate>().map_err(|e| format!("{flag}: {e}")))
        .transpose()
}

/// A MAC flag's value, the error naming the flag.
fn mac(v: Option<String>) -> Result<Option<Mac>, String> {
    v.map(|v| Mac::try_from(v).map_err(|e| format!("--mac: {e}")))
        .transpose()
}

#[derive(Subcommand, Debug)]
enum SessionCmd {
    /// Open a session.
    Add {
        /// The user name.
        #[arg(long)]
        user: String,
        /// The subscriber's address (on the access subnet).
        #[arg(long)]
        address: std::net::Ipv4Addr,
        /// Its MAC (else learned from its first frame).
        #[arg(long)]
        mac: Option<String>,
        /// Channel (line) id.
        #[arg(long)]
        channel: Option<u32>,
        /// Services it may use, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        services: Option<Vec<String>>,
        /// Declared uplink bandwidth, e.g. 10M.
        #[arg(long)]
        up: Option<String>,
        /// Declared downlink bandwidth, e.g. 50M.
        #[arg(long)]
        down: Option<String>,
        /// Flows it may have open.
        #[arg(long)]
        max_flows: Option<u32>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// End a session; its final record follows.
    Remove {
        /// Its id or address.
        session: String,
        /// Why: user_request, admin_reset (default), session_timeout, ...
        #[arg(long)]
        cause: Option<String>,
    },
    /// Log a subscriber in, as a NAS access request would: by user and password, or by
    /// an identifier (MAC, mobile id, address). Answers once the session is installed.
    Login {
        /// User name.
        #[arg(long)]
        user: Option<String>,
        /// Password (prefer --password-stdin: arguments show in `ps`).
        #[arg(long)]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, conflicts_with = "password")]
        password_stdin: bool,
        /// The address it has (else Framed-IP-Address or a pool gives one).
        #[arg(long)]
        address: Option<std::net::Ipv4Addr>,
        /// Its MAC.
        #[arg(long)]
        mac: Option<String>,
        /// Its mobile id (a returning mobile keeps its session and address).
        #[arg(long)]
        mobile_id: Option<String>,
        /// Channel (line) id.
        #[arg(long)]
        channel: Option<u32>,
    },
    /// End a subscriber's sessions (by session id or address, or every session of a
    /// user); the Stops follow.
    Logout {
        /// The session's id or address.
        session: Option<String>,
        /// Every session of this user instead.
        #[arg(long, conflicts_with = "session")]
        user: Option<String>,
        /// Why: user_request (default), admin_reset, ...
        #[arg(long)]
        cause: Option<String>,
    },
    /// Change a session live: bandwidth, services, limits.
    Update {
        /// Its id or address.
        session: String,
        /// New services, comma-separated.
        #[arg(long, value_delimiter = ',')]
        services: Option<Vec<String>>,
        /// New declared uplink bandwidth.
        #[arg(long)]
        up: Option<String>,
        /// New declared downlink bandwidth.
        #[arg(long)]
        down: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Subcommand, Debug)]
enum ServerCmd {
    /// Set a server's state or metrics.
    Set {
        /// The service's name.
        service: String,
        /// The server: its index in the service, or address[:port].
        server: String,
        /// up or down.
        #[arg(long)]
        state: Option<String>,
        /// Measured response time, microseconds (fastest_response).
        #[arg(long)]
        response_us: Option<u32>,
        /// CPU load, percent (lowest_cpu_load).
        #[arg(long)]
        cpu_load: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
enum TunnelCmd {
    /// Calls in tunnels: switched PPP calls (LAC), calls from LACs (LNS).
    #[command(subcommand)]
    Session(TunnelSessionCmd),
}

#[derive(Subcommand, Debug)]
enum TunnelSessionCmd {
    /// Removed with the IP mode (docs/l2tp.md, "Migration from IP subscribers"): says so.
    #[command(hide = true)]
    Add {
        /// Whatever an older script passes.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// End a switched PPP call (LAC) or a call a LAC opened (LNS).
    Remove {
        /// Our L2TP session id (a switched call: `show session USER` -> l2tp_session).
        session: String,
    },
    /// Set a switched call's service level (LAC).
    Level {
        /// Its administration-table id (`show tunnel ID` -> CALL).
        session: String,
        /// The level, e.g. 5M.
        level: String,
    },
}

#[derive(Subcommand, Debug)]
enum LbCmd {
    /// Mark every target with this MAC up or down.
    Set {
        /// The target's MAC.
        mac: String,
        /// up or down.
        state: String,
    },
}

/// The request a ctl command sends.
fn ctl_request(command: CtlCmd) -> Result<Request, String> {
    Ok(match command {
        CtlCmd::Show { what } => match what {
            ShowWhat::Status => Request::ShowStatus,
            ShowWhat::Ports => Request::ShowPorts,
            ShowWhat::Workers => Request::ShowWorkers,
            ShowWhat::Counters => Request::ShowCounters,
            ShowWhat::Neighbors => Request::ShowNeighbors,
            ShowWhat::Sessions => Request::ShowSessions,
            ShowWhat::Session { session } => Request::ShowSession(proto::SessionArg { session }),
            ShowWhat::Services => Request::ShowServices,
            ShowWhat::Lb => Request::ShowLb,
            ShowWhat::Accounting => Request::ShowAccounting,
            ShowWhat::Health => Request::ShowHealth,
            ShowWhat::Cluster => Request::ShowCluster,
            ShowWhat::Pools => Request::ShowPools,
            ShowWhat::Logins => Request::ShowLogins,
            ShowWhat::Tunnels => Request::ShowTunnels,
            ShowWhat::Tunnel { tunnel } => Request::ShowTunnel(proto::TunnelArg { tunnel }),
            ShowWhat::Invoice { account, period } => Request::ShowInvoice { account, period },
        },
        CtlCmd::Session { action } => match *action {
            SessionCmd::Add {
                user,
                address,
                mac: m,
                channel,
                services,
                up,
                down,
                max_flows,
                limits,
            } => Request::SessionAdd(Box::new(StaticSubscriber {
                user,
                address,
                mac: mac(m)?,
                channel,
                services,
                bandwidth_up: rate("--up", up)?.unwrap_or_default(),
                bandwidth_down: rate("--down", down)?.unwrap_or_default(),
                max_flows,
                limits: limits.into_limits()?,
            })),
            SessionCmd::Login {
                user,
                password,
                password_stdin,
                address,
                mac: m,
                mobile_id,
                channel,
            } => {
                let password = if password_stdin {
                    Some(subscriber::read_password()?)
                } else {
                    password
                };
                Request::SessionLogin(proto::Login {
                    user,
                    password,
                    address,
                    mac: mac(m)?,
                    mobile_id,
                    channel,
                })
            }
            SessionCmd::Logout {
                session,
                user,
                cause,
            } => Request::SessionLogout(proto::Logout {
                session,
                user,
                cause,
            }),
            SessionCmd::Remove { session, cause } => {
                Request::SessionRemove(proto::SessionEnd { session, cause })
            }
            SessionCmd::Update {
                session,
                services,
                up,
                down,
                limits,
            } => Request::SessionUpdate(Box::new(proto::SessionChange {
                session,
                bandwidth_up: rate("--up", up)?,
                bandwidth_down: rate("--down", down)?,
                services,
                limits: limits.into_limits()?,
            })),
        },
        CtlCmd::Server {
            action:
                ServerCmd::Set {
                    service,
                    server,
                    state,
                    response_us,
                    cpu_load,
                },
        } => Request::ServerSet(proto::ServerChange {
            service,
            server,
            state,
            response_us,
            cpu_load,
        }),
        CtlCmd::Lb {
            action: LbCmd::Set { mac, state },
        } => Request::LbSet(proto::LbChange { mac, state }),
        CtlCmd::Subscriber(cmd) => subscriber::ctl_request(cmd)?,
        CtlCmd::Tunnel {
            action: TunnelCmd::Session(s),
        } => match s {
            TunnelSessionCmd::Add { .. } => {
                return Err(proto::TUNNEL_SESSION_ADD_REMOVED.into());
            }
            TunnelSessionCmd::Remove { session } => {
                Request::TunnelSessionRemove(proto::TunnelKey {
                    session,
                    level: None,
                })
            }
            TunnelSessionCmd::Level { session, level } => {
                Request::TunnelSessionLevel(proto::TunnelKey {
                    session,
                    level: rate("LEVEL", Some(level))?,
                })
            }
        },
        CtlCmd::Help => Request::Help,
        CtlCmd::Billing(_) | CtlCmd::Raw { .. } => {
            return Err("billing and raw requests are sent on their own paths".into());
        }
    })
}

/// Writes to stdout. A reader that has gone away (`tollgate ctl show sessions | head`)
/// ends the output quietly instead of a panic; other errors are reported once.
fn out(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_fmt(args).and_then(|()| o.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        let _ = writeln!(std::io::stderr(), "tollgate: writing the output: {e}");
    }
}

macro_rules! outp {
    ($($a:tt)*) => { out(format_args!($($a)*)) };
}

macro_rules! outln {
    ($($a:tt)*) => { out(format_args!("{}\n", format_args!($($a)*))) };
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    let code = run_command(cli);
    // Log lines still queued go out now, or never (a closed or stuck output).
    tollgate_control::logging::flush(Duration::from_millis(500));
    code
}

fn run_command(cli: Cli) -> ExitCode {
    match cli.command {
        Cmd::Run {
            config,
            spool_afresh,
        } => {
            let embedded = config.is_none();
            let (mut cfg, name) = match load(config) {
                Ok(c) => c,
                Err(e) => return fail(&e, 2),
            };
            cfg.aaa.spool_afresh = spool_afresh;
            init_logging(&cfg.log.level);
            match engine::run(&cfg, &name) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let mut msg = error_text(&e);
                    if embedded && e.chain().any(|c| c.is::<AfPacketError>()) {
                        msg.push_str(EMBEDDED_HINT);
                    }
                    fail(&msg, 1)
                }
            }
        }
        Cmd::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                outln!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string(), 2),
        },
        Cmd::DefaultConfig => {
            out(format_args!("{DEFAULT_CONFIG}"));
            ExitCode::SUCCESS
        }
        Cmd::Replay {
            config,
            access_in,
            core_in,
            access_out,
            core_out,
            linger_ms,
            flow_records,
            session_log,
            json,
        } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string(), 2),
            };
            init_logging("warn");
            let files = ReplayFiles {
                access_in,
                core_in,
                access_out,
                core_out,
                flow_records,
                session_log,
            };
            match replay(&cfg, &files, Duration::from_millis(linger_ms)) {
                Ok(s) if json => {
                    outln!(
                        "{}",
                        serde_json::to_string_pretty(&s.to_json()).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Ok(s) => {
                    outln!(
                        "replayed {:.3} ms of capture: wrote {} frames to {} and {} to {}\n",
                        s.span.1.since(s.span.0).as_secs_f64() * 1000.0,
                        s.written[0],
                        files.access_out.display(),
                        s.written[1],
                        files.core_out.display()
                    );
                    outp!("{}", render::counters(&s.counters));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&error_text(&e), 1),
            }
        }
        Cmd::Ctl {
            socket,
            config,
            json,
            command,
        } => run_ctl(socket, config, json, command),
        Cmd::Billing(args) => billing::run(args),
        Cmd::Subscriber(args) => subscriber::run(args),
        Cmd::Pktgen(args) => {
            init_logging("warn");
            match tollgate_tools::pktgen::main(&args) {
                Ok(r) if args.json => {
                    outln!(
                        "{}",
                        serde_json::to_string_pretty(&r.to_json()).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Ok(r) => {
                    outp!("{}", r.render());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&error_text(&e), 1),
            }
        }
        Cmd::Bench(args) => match tollgate_tools::bench::run(&args) {
            Ok(report) if args.json => {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => fail(&e, 1),
        },
    }
}

fn run_ctl(
    socket: Option<PathBuf>,
    config: Option<PathBuf>,
    json: bool,
    command: CtlCmd,
) -> ExitCode {
    let socket = match (socket, config) {
        (Some(s), _) => s,
        (None, Some(c)) => match Config::load(&c) {
            Ok(cfg) => cfg.control.socket,
            Err(e) => return ctl_fail(json, &e.to_string(), 2),
        },
        (None, None) => Config::embedded().control.socket,
    };
    if let CtlCmd::Billing(cmd) = command {
        return billing::run_ctl(&socket, json, cmd);
    }
    if let CtlCmd::Raw { json: line } = command {
        return run_raw(&socket, json, &line);
    }
    let req = match ctl_request(command) {
        Ok(r) => r,
        Err(e) => return ctl_fail(json, &e, 2),
    };
    match client::call(&socket, &req, Duration::from_secs(15)) {
        Err(e) => ctl_fail(json, &e, 1),
        Ok(reply) if !reply.ok => ctl_fail(json, reply.error.as_deref().unwrap_or("failed"), 1),
        // What the daemon answered, as it said it.
        Ok(reply) if json => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&reply.data).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(reply) => match Answer::parse(&req, reply.data) {
            Ok(a) => {
                outp!("{}", render::render(&a));
                ExitCode::SUCCESS
            }
            Err(e) => ctl_fail(
                json,
                &format!("unreadable answer to `{}`: {e}", req.name()),
                1,
            ),
        },
    }
}

/// `tollgate ctl raw LINE`: the line goes to the daemon as it is (only checked to be a
/// request object); a known command's answer is rendered like the command's own.
fn run_raw(socket: &std::path::Path, json: bool, line: &str) -> ExitCode {
    let envelope: Envelope = match serde_json::from_str(line) {
        Ok(e) => e,
        Err(e) => {
            let msg = format!(
                "malformed request: {e}; expected a JSON object like {{\"cmd\": \"show status\"}}"
            );
            return ctl_fail(json, &msg, 2);
        }
    };
    let known = Request::try_from(envelope.clone()).ok();
    match client::call_raw(socket, &envelope, Duration::from_secs(15)) {
        Err(e) => ctl_fail(json, &e, 1),
        Ok(reply) if !reply.ok => ctl_fail(json, reply.error.as_deref().unwrap_or("failed"), 1),
        Ok(reply) => {
            let answer = known
                .filter(|_| !json)
                .and_then(|req| Answer::parse(&req, reply.data.clone()).ok());
            match answer {
                Some(a) => outp!("{}", render::render(&a)),
                None => outln!(
                    "{}",
                    serde_json::to_string_pretty(&reply.data).unwrap_or_default()
                ),
            }
            ExitCode::SUCCESS
        }
    }
}

/// Said when `tollgate run` without `--config` cannot open its ports.
const EMBEDDED_HINT: &str = "
tollgate: without --config, `tollgate run` uses its embedded default, which is the lab's:
  ports acc0 and core0 inside the network namespace tg-gw that `make run` (scripts/lab.sh)
  builds. For the lab, run `sudo make run`. For your own interfaces, write a config
  (`tollgate default-config > site.toml`, then set access/core interface and address)
  and run `tollgate run --config site.toml`.";

/// An error and its causes, each said once: a message that already quotes its cause
/// ("... not found: No such device (os error 19)") is not followed by it again.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let m = cause.to_string();
        if out.contains(&m) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&m);
    }
    out
}

fn load(path: Option<PathBuf>) -> Result<(Config, String), String> {
    match path {
        Some(p) => Config::load(&p)
            .map(|c| (c, p.display().to_string()))
            .map_err(|e| e.to_string()),
        None => Ok((Config::embedded(), "<embedded default>".to_string())),
    }
}

fn init_logging(level: &str) {
    tollgate_control::logging::init(level);
}

/// `tollgate ctl`'s failure: with `--json`, standard output gets it as the socket's error
/// reply (`{"ok": false, "error": "..."}`) so that a script reads JSON whatever happened;
/// standard error and the exit status say it as without `--json`.
pub(crate) fn ctl_fail(json: bool, msg: &str, code: u8) -> ExitCode {
    if json {
        outln!("{}", proto::Reply::error(msg).to_line());
    }
    fail(msg, code)
}

/// A command line clap refused. `tollgate ctl --json ...` says it as JSON on standard
/// output too, like every other failure of `ctl --json`; help and version are no
/// failures and print as usual.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ctl_json = args.first().is_some_and(|a| a == "ctl")
        && args
            .iter()
            .take_while(|a| *a != "--")
            .any(|a| a == "--json");
    // Help and version go to standard output and are no failure.
    let failure = e.use_stderr();
    if ctl_json && failure {
        let text = e.to_string();
        let msg = match e.kind() {
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => format!(
                "incomplete command `tollgate {}`: {} (--help lists what follows)",
                args.join(" "),
                text.lines().next().unwrap_or_default()
            ),
            // clap's message on one line, without the usage that follows it.
            _ => text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
                .trim_start_matches("error: ")
                .to_string(),
        };
        outln!("{}", proto::Reply::error(msg).to_line());
    }
    let _ = e.print();
    ExitCode::from(e.exit_code().clamp(0, 255) as u8)
}

/// Says what failed on standard error, and never panics doing it (standard error may be
/// a pipe that has closed).
fn fail(msg: &str, code: u8) -> ExitCode {
    use std::io::Write;
    // The log lines before it first.
    tollgate_control::logging::flush(Duration::from_millis(500));
    let _ = writeln!(std::io::stderr(), "tollgate: {msg}");
    ExitCode::from(code)
}
