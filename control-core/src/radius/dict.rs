//! Attribute numbers: the standard ones Tollgate uses (RFC 2865, 2866, 2869, 5176) and
//! the Tollgate vendor attributes shipped as `config/dictionary.tollgate`, with a parser
//! for FreeRADIUS dictionary syntax so a test can hold the two in step.

use super::packet::AttrKey;

/// Tollgate's vendor number: a placeholder private enterprise number, not registered
/// (see `config/dictionary.tollgate`).
pub const TOLLGATE_VENDOR: u32 = 59999;

/// The shipped dictionary, as text.
pub const TOLLGATE_DICTIONARY: &str = include_str!("../../../config/dictionary.tollgate");

/// Standard attributes.
pub mod std_attr {
    use super::AttrKey;
    /// User-Name (1), text.
    pub const USER_NAME: AttrKey = AttrKey::Std(1);
    /// User-Password (2), hidden.
    pub const USER_PASSWORD: AttrKey = AttrKey::Std(2);
    /// NAS-IP-Address (4), ipaddr.
    pub const NAS_IP_ADDRESS: AttrKey = AttrKey::Std(4);
    /// CHAP-Password (3): the CHAP Identifier and the 16-byte response (RFC 2865 5.3).
    pub const CHAP_PASSWORD: AttrKey = AttrKey::Std(3);
    /// NAS-Port (5), integer.
    pub const NAS_PORT: AttrKey = AttrKey::Std(5);
    /// Service-Type (6), integer.
    pub const SERVICE_TYPE: AttrKey = AttrKey::Std(6);
    /// Framed-Protocol (7), integer: 1 = PPP.
    pub const FRAMED_PROTOCOL: AttrKey = AttrKey::Std(7);
    /// Framed-IP-Address (8), ipaddr.
    pub const FRAMED_IP_ADDRESS: AttrKey = AttrKey::Std(8);
    /// Framed-MTU (12), integer.
    pub const FRAMED_MTU: AttrKey = AttrKey::Std(12);
    /// Reply-Message (18), text.
    pub const REPLY_MESSAGE: AttrKey = AttrKey::Std(18);
    /// State (24), octets.
    pub const STATE: AttrKey = AttrKey::Std(24);
    /// Class (25), octets, echoed in accounting.
    pub const CLASS: AttrKey = AttrKey::Std(25);
    /// Vendor-Specific (26).
    pub const VENDOR_SPECIFIC: AttrKey = AttrKey::Std(26);
    /// Session-Timeout (27), seconds.
    pub const SESSION_TIMEOUT: AttrKey = AttrKey::Std(27);
    /// Idle-Timeout (28), seconds.
    pub const IDLE_TIMEOUT: AttrKey = AttrKey::Std(28);
    /// Called-Station-Id (30), text.
    pub const CALLED_STATION_ID: AttrKey = AttrKey::Std(30);
    /// Calling-Station-Id (31), text: the subscriber's MAC or mobile id.
    pub const CALLING_STATION_ID: AttrKey = AttrKey::Std(31);
    /// NAS-Identifier (32), text.
    pub const NAS_IDENTIFIER: AttrKey = AttrKey::Std(32);
    /// Acct-Status-Type (40), enum [`super::AcctStatusType`].
    pub const ACCT_STATUS_TYPE: AttrKey = AttrKey::Std(40);
    /// Acct-Delay-Time (41), seconds.
    pub const ACCT_DELAY_TIME: AttrKey = AttrKey::Std(41);
    /// Acct-Input-Octets (42): octets from the subscriber, low 32 bits.
    pub const ACCT_INPUT_OCTETS: AttrKey = AttrKey::Std(42);
    /// Acct-Output-Octets (43): octets to the subscriber, low 32 bits.
    pub const ACCT_OUTPUT_OCTETS: AttrKey = AttrKey::Std(43);
    /// Acct-Session-Id (44), text.
    pub const ACCT_SESSION_ID: AttrKey = AttrKey::Std(44);
    /// Acct-Authentic (45), integer.
    pub const ACCT_AUTHENTIC: AttrKey = AttrKey::Std(45);
    /// Acct-Session-Time (46), seconds.
    pub const ACCT_SESSION_TIME: AttrKey = AttrKey::Std(46);
    /// Acct-Input-Packets (47).
    pub const ACCT_INPUT_PACKETS: AttrKey = AttrKey::Std(47);
    /// Acct-Output-Packets (48).
    pub const ACCT_OUTPUT_PACKETS: AttrKey = AttrKey::Std(48);
    /// Acct-Terminate-Cause (49), enum [`super::TerminateCause`].
    pub const ACCT_TERMINATE_CAUSE: AttrKey = AttrKey::Std(49);
    /// Acct-Input-Gigawords (52): octets from the subscriber, high 32 bits (RFC 2869).
    pub const ACCT_INPUT_GIGAWORDS: AttrKey = AttrKey::Std(52);
    /// Acct-Output-Gigawords (53).
    pub const ACCT_OUTPUT_GIGAWORDS: AttrKey = AttrKey::Std(53);
    /// Event-Timestamp (55), seconds since 1970.
    pub const EVENT_TIMESTAMP: AttrKey = AttrKey::Std(55);
    /// CHAP-Challenge (60), octets: the challenge, when it is not the Request
    /// Authenticator.
    pub const CHAP_CHALLENGE: AttrKey = AttrKey::Std(60);
    /// NAS-Port-Type (61), integer: 15 = Ethernet.
    pub const NAS_PORT_TYPE: AttrKey = AttrKey::Std(61);
    /// NAS-Port-Id (87), text: the access port and VLANs (`port.svlan.cvlan`).
    pub const NAS_PORT_ID: AttrKey = AttrKey::Std(87);
    /// ADSL-Agent-Circuit-Id (RFC 4679, vendor 3561 attribute 1): TR-101
    /// Agent-Circuit-Id.
    pub const AGENT_CIRCUIT_ID: AttrKey = AttrKey::Vendor(3561, 1);
    /// ADSL-Agent-Remote-Id (RFC 4679, vendor 3561 attribute 2).
    pub const AGENT_REMOTE_ID: AttrKey = AttrKey::Vendor(3561, 2);
    /// Acct-Interim-Interval (85), seconds.
    pub const ACCT_INTERIM_INTERVAL: AttrKey = AttrKey::Std(85);
    /// Framed-Pool (RFC 2869): the address pool to take the subscriber's address from.
    pub const FRAMED_POOL: AttrKey = AttrKey::Std(88);
    /// Tunnel-Type (64, RFC 2868; tagged): 3 is L2TP.
    pub const TUNNEL_TYPE: AttrKey = AttrKey::Std(64);
    /// Tunnel-Medium-Type (65; tagged): 1 is IPv4.
    pub const TUNNEL_MEDIUM_TYPE: AttrKey = AttrKey::Std(65);
    /// Tunnel-Server-Endpoint (67; tagged): the LNS's address, dotted decimal.
    pub const TUNNEL_SERVER_ENDPOINT: AttrKey = AttrKey::Std(67);
    /// Tunnel-Client-Endpoint (RFC 2868): the LAC's end of the tunnel.
    pub const TUNNEL_CLIENT_ENDPOINT: AttrKey = AttrKey::Std(66);
    /// Acct-Tunnel-Connection (RFC 2867): which call in which tunnel.
    pub const ACCT_TUNNEL_CONNECTION: AttrKey = AttrKey::Std(68);
    /// Tunnel-Password (69; tagged, salt-encrypted): the tunnel secret.
    pub const TUNNEL_PASSWORD: AttrKey = AttrKey::Std(69);
    /// Tunnel-Assignment-Id (82; tagged): which tunnel to the endpoint.
    pub const TUNNEL_ASSIGNMENT_ID: AttrKey = AttrKey::Std(82);
    /// Tunnel-Preference (83; tagged): lower is tried first.
    pub const TUNNEL_PREFERENCE: AttrKey = AttrKey::Std(83);
    /// Tunnel-Client-Auth-Id (90; tagged): the LAC's Host Name in SCCRQ.
    pub const TUNNEL_CLIENT_AUTH_ID: AttrKey = AttrKey::Std(90);
    /// Tunnel-Server-Auth-Id (91; tagged): the LNS's Host Name expected in SCCRP.
    pub const TUNNEL_SERVER_AUTH_ID: AttrKey = AttrKey::Std(91);
    /// Message-Authenticator (80).
    pub const MESSAGE_AUTHENTICATOR: AttrKey = AttrKey::Std(80);
    /// Error-Cause (101), RFC 5176.
    pub const ERROR_CAUSE: AttrKey = AttrKey::Std(101);
    /// Framed-Interface-Id (96, RFC 3162), 8 octets: the interface id of the
    /// subscriber's IPv6 address (its DHCPv6 IA_NA address in the session's /64).
    pub const FRAMED_INTERFACE_ID: AttrKey = AttrKey::Std(96);
    /// Framed-IPv6-Prefix (97, RFC 3162), ipv6prefix: the session's /64.
    pub const FRAMED_IPV6_PREFIX: AttrKey = AttrKey::Std(97);
    /// Delegated-IPv6-Prefix (123, RFC 4818), ipv6prefix: the prefix delegated by
    /// DHCPv6 IA_PD.
    pub const DELEGATED_IPV6_PREFIX: AttrKey = AttrKey::Std(123);
}

/// Tollgate vendor attributes (all `AttrKey::Vendor(TOLLGATE_VENDOR, n)`).
pub mod tollgate {
    use super::{AttrKey, TOLLGATE_VENDOR};
    const fn v(n: u8) -> AttrKey {
        AttrKey::Vendor(TOLLGATE_VENDOR, n)
    }
    /// Tollgate-Volume-Limit, integer64 octets both ways.
    pub const VOLUME_LIMIT: AttrKey = v(1);
    /// Tollgate-Bandwidth-Up, integer64 bit/s.
    pub const BANDWIDTH_UP: AttrKey = v(2);
    /// Tollgate-Bandwidth-Down, integer64 bit/s.
    pub const BANDWIDTH_DOWN: AttrKey = v(3);
    /// Tollgate-Allowed-Service, string, repeatable.
    pub const ALLOWED_SERVICE: AttrKey = v(4);
    /// Tollgate-Max-Logins, integer.
    pub const MAX_LOGINS: AttrKey = v(5);
    /// Tollgate-Rate-Ratio, integer percent.
    pub const RATE_RATIO: AttrKey = v(6);
    /// Tollgate-Rate-Window, integer seconds.
    pub const RATE_WINDOW: AttrKey = v(7);
    /// Tollgate-App-Timeout, integer seconds.
    pub const APP_TIMEOUT: AttrKey = v(8);
    /// Tollgate-Volume-Limit-Up, integer64 octets from the subscriber.
    pub const VOLUME_LIMIT_UP: AttrKey = v(9);
    /// Tollgate-Volume-Limit-Down, integer64 octets to the subscriber.
    pub const VOLUME_LIMIT_DOWN: AttrKey = v(10);
    /// Tollgate-Packet-Limit-Up, integer64 packets.
    pub const PACKET_LIMIT_UP: AttrKey = v(11);
    /// Tollgate-Packet-Limit-Down, integer64 packets.
    pub const PACKET_LIMIT_DOWN: AttrKey = v(12);
    /// Tollgate-Login-Victim, integer: 0 earliest, 1 by order.
    pub const LOGIN_VICTIM: AttrKey = v(13);
    /// Tollgate-Login-Order, integer.
    pub const LOGIN_ORDER: AttrKey = v(14);
    /// Tollgate-Idle-Server, ipaddr.
    pub const IDLE_SERVER: AttrKey = v(15);
    /// Tollgate-Disconnect-Cause, integer [`super::DisconnectCause`].
    pub const DISCONNECT_CAUSE: AttrKey = v(16);
    /// Tollgate-Billing-Account, string.
    pub const BILLING_ACCOUNT: AttrKey = v(17);

    /// Every vendor attribute: name, key and dictionary type, as the shipped dictionary
    /// must declare them.
    pub const ALL: &[(&str, AttrKey, &str)] = &[
        ("Tollgate-Volume-Limit", VOLUME_LIMIT, "integer64"),
        ("Tollgate-Bandwidth-Up", BANDWIDTH_UP, "integer64"),
        ("Tollgate-Bandwidth-Down", BANDWIDTH_DOWN, "integer64"),
        ("Tollgate-Allowed-Service", ALLOWED_SERVICE, "string"),
        ("Tollgate-Max-Logins", MAX_LOGINS, "integer"),
        ("Tollgate-Rate-Ratio", RATE_RATIO, "integer"),
        ("Tollgate-Rate-Window", RATE_WINDOW, "integer"),
        ("Tollgate-App-Timeout", APP_TIMEOUT, "integer"),
        ("Tollgate-Volume-Limit-Up", VOLUME_LIMIT_UP, "integer64"),
        ("Tollgate-Volume-Limit-Down", VOLUME_LIMIT_DOWN, "integer64"),
        ("Tollgate-Packet-Limit-Up", PACKET_LIMIT_UP, "integer64"),
        ("Tollgate-Packet-Limit-Down", PACKET_LIMIT_DOWN, "integer64"),
        ("Tollgate-Login-Victim", LOGIN_VICTIM, "integer"),
        ("Tollgate-Login-Order", LOGIN_ORDER, "integer"),
        ("Tollgate-Idle-Server", IDLE_SERVER, "ipaddr"),
        ("Tollgate-Disconnect-Cause", DISCONNECT_CAUSE, "integer"),
        ("Tollgate-Billing-Account", BILLING_ACCOUNT, "string"),
    ];
}

/// Acct-Status-Type values (RFC 2866 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AcctStatusType {
    /// Start (1).
    Start,
    /// Stop (2).
    Stop,
    /// Interim-Update (3).
    InterimUpdate,
    /// Accounting-On (7).
    AccountingOn,
    /// Accounting-Off (8).
    AccountingOff,
}

impl AcctStatusType {
    /// The wire value.
    pub fn value(self) -> u32 {
        match self {
            AcctStatusType::Start => 1,
            AcctStatusType::Stop => 2,
            AcctStatusType::InterimUpdate => 3,
            AcctStatusType::AccountingOn => 7,
            AcctStatusType::AccountingOff => 8,
        }
    }

    /// The dictionary name.
    pub fn name(self) -> &'static str {
        match self {
            AcctStatusType::Start => "Start",
            AcctStatusType::Stop => "Stop",
            AcctStatusType::InterimUpdate => "Interim-Update",
            AcctStatusType::AccountingOn => "Accounting-On",
            AcctStatusType::AccountingOff => "Accounting-Off",
        }
    }
}

/// Acct-Terminate-Cause values (RFC 2866 §5.10) that Tollgate sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TerminateCause {
    /// 1: the subscriber logged out.
    UserRequest,
    /// 2: the subscriber's line went away (interim monitor timed out).
    LostCarrier,
    /// 3: the service is gone.
    LostService,
    /// 4: idle time reached.
    IdleTimeout,
    /// 5: session time reached.
    SessionTimeout,
    /// 6: an operator (ctl or Disconnect-Request) ended it.
    AdminReset,
    /// 7: the operator restarted the gateway.
    AdminReboot,
    /// 9: the gateway failed.
    NasError,
    /// 10: the gateway ended it for another reason (volume, rate).
    NasRequest,
    /// 11: the gateway restarted without closing it; counters are the last known ones.
    NasReboot,
    /// 13: another login took its place (simultaneous-login limit).
    PortPreempted,
    /// 15: the service could not be used.
    ServiceUnavailable,
}

impl TerminateCause {
    /// The wire value.
    pub fn value(self) -> u32 {
        match self {
            TerminateCause::UserRequest => 1,
            TerminateCause::LostCarrier => 2,
            TerminateCause::LostService => 3,
            TerminateCause::IdleTimeout => 4,
            TerminateCause::SessionTimeout => 5,
            TerminateCause::AdminReset => 6,
            TerminateCause::AdminReboot => 7,
            TerminateCause::NasError => 9,
            TerminateCause::NasRequest => 10,
            TerminateCause::NasReboot => 11,
            TerminateCause::PortPreempted => 13,
            TerminateCause::ServiceUnavailable => 15,
        }
    }

    /// The dictionary name, as FreeRADIUS writes it in its detail file.
    pub fn name(self) -> &'static str {
        match self {
            TerminateCause::UserRequest => "User-Request",
            TerminateCause::LostCarrier => "Lost-Carrier",
            TerminateCause::LostService => "Lost-Service",
            TerminateCause::IdleTimeout => "Idle-Timeout",
            TerminateCause::SessionTimeout => "Session-Timeout",
            TerminateCause::AdminReset => "Admin-Reset",
            TerminateCause::AdminReboot => "Admin-Reboot",
            TerminateCause::NasError => "NAS-Error",
            TerminateCause::NasRequest => "NAS-Request",
            TerminateCause::NasReboot => "NAS-Reboot",
            TerminateCause::PortPreempted => "Port-Preempted",
            TerminateCause::ServiceUnavailable => "Service-Unavailable",
        }
    }
}

/// Why Tollgate ended a session (DISC-1 A-F and the session state machine), carried as
/// Tollgate-Disconnect-Cause and mapped to the coarser Acct-Terminate-Cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DisconnectCause {
    /// The subscriber (or `ctl session logout`) logged out.
    Logout,
    /// A: maximum session time.
    SessionTime,
    /// B: idle time.
    IdleTime,
    /// C: data volume.
    Volume,
    /// D: one login too many; this one was chosen to go.
    SimultaneousLogins,
    /// E: traffic rate above its share of the path.
    Rate,
    /// F: just before the application's own idle timeout.
    AppTimeout,
    /// An operator: `ctl`, or a Disconnect-Request.
    Admin,
    /// SES-1: the session timer ran out while the session was dormant.
    DormantTimeout,
    /// SES-1: no interim update arrived in time.
    InterimTimeout,
    /// The gateway restarted while the session was open (closed at recovery).
    Restart,
    /// The gateway was stopped cleanly and ended its sessions.
    Shutdown,
    /// The subscriber's link went silent (a PPP peer stopped answering LCP echoes).
    LostCarrier,
}

impl DisconnectCause {
    /// Tollgate-Disconnect-Cause value.
    pub fn value(self) -> u32 {
        self as u32
    }

    /// The Acct-Terminate-Cause a RADIUS server sees.
    pub fn terminate_cause(self) -> TerminateCause {
        match self {
            DisconnectCause::Logout => TerminateCause::UserRequest,
            DisconnectCause::SessionTime => TerminateCause::SessionTimeout,
            DisconnectCause::IdleTime
            | DisconnectCause::AppTimeout
            | DisconnectCause::DormantTimeout => TerminateCause::IdleTimeout,
            DisconnectCause::Volume | DisconnectCause::Rate => TerminateCause::NasRequest,
            DisconnectCause::SimultaneousLogins => TerminateCause::PortPreempted,
            DisconnectCause::Admin => TerminateCause::AdminReset,
            DisconnectCause::InterimTimeout => TerminateCause::LostCarrier,
            DisconnectCause::Restart => TerminateCause::NasReboot,
            DisconnectCause::Shutdown => TerminateCause::NasRequest,
            DisconnectCause::LostCarrier => TerminateCause::LostCarrier,
        }
    }

    /// The dictionary VALUE name.
    pub fn name(self) -> &'static str {
        match self {
            DisconnectCause::Logout => "Logout",
            DisconnectCause::SessionTime => "Session-Time",
            DisconnectCause::IdleTime => "Idle-Time",
            DisconnectCause::Volume => "Volume",
            DisconnectCause::SimultaneousLogins => "Simultaneous-Logins",
            DisconnectCause::Rate => "Rate",
            DisconnectCause::AppTimeout => "App-Timeout",
            DisconnectCause::Admin => "Admin",
            DisconnectCause::DormantTimeout => "Dormant-Timeout",
            DisconnectCause::InterimTimeout => "Interim-Timeout",
            DisconnectCause::Restart => "Restart",
            DisconnectCause::Shutdown => "Shutdown",
            DisconnectCause::LostCarrier => "Lost-Carrier",
        }
    }

    /// Every cause, in value order.
    pub const ALL: [DisconnectCause; 13] = [
        DisconnectCause::Logout,
        DisconnectCause::SessionTime,
        DisconnectCause::IdleTime,
        DisconnectCause::Volume,
        DisconnectCause::SimultaneousLogins,
        DisconnectCause::Rate,
        DisconnectCause::AppTimeout,
        DisconnectCause::Admin,
        DisconnectCause::DormantTimeout,
        DisconnectCause::InterimTimeout,
        DisconnectCause::Restart,
        DisconnectCause::Shutdown,
        DisconnectCause::LostCarrier,
    ];
}

impl From<tollgate_dataplane::session::DisconnectCause> for DisconnectCause {
    /// The cause a session record of the fast path is reported with.
    fn from(c: tollgate_dataplane::session::DisconnectCause) -> DisconnectCause {
        use tollgate_dataplane::session::DisconnectCause as Dp;
        match c {
            Dp::UserRequest => DisconnectCause::Logout,
            Dp::SessionTimeout => DisconnectCause::SessionTime,
            Dp::IdleTimeout | Dp::ServerIdleTimeout => DisconnectCause::IdleTime,
            Dp::VolumeLimit => DisconnectCause::Volume,
            Dp::SimultaneousLogins => DisconnectCause::SimultaneousLogins,
            Dp::RateExceeded => DisconnectCause::Rate,
            Dp::ApplicationTimeout => DisconnectCause::AppTimeout,
            Dp::AdminReset => DisconnectCause::Admin,
            Dp::NasReboot => DisconnectCause::Restart,
            Dp::NasRequest => DisconnectCause::Shutdown,
            Dp::DormantTimeout => DisconnectCause::DormantTimeout,
            Dp::LostCarrier => DisconnectCause::LostCarrier,
        }
    }
}

/// Error-Cause values (RFC 5176 §3.6) that the CoA/Disconnect listener sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCause {
    /// 401: an attribute we do not support in this request.
    UnsupportedAttribute,
    /// 402: an attribute the request needs is missing (no session identification).
    MissingAttribute,
    /// 403: NAS-IP-Address or NAS-Identifier is not this gateway's.
    NasIdentificationMismatch,
    /// 404: the request is malformed in content.
    InvalidRequest,
    /// 405: a Service-Type we do not support.
    UnsupportedService,
    /// 406: an extension we do not support.
    UnsupportedExtension,
    /// 407: an attribute value out of range.
    InvalidAttributeValue,
    /// 501: the operator forbids it.
    AdministrativelyProhibited,
    /// 503: no session matches.
    SessionContextNotFound,
    /// 504: the session is not removable.
    SessionContextNotRemovable,
    /// 506: resources are lacking.
    ResourcesUnavailable,
}

impl ErrorCause {
    /// The wire value.
    pub fn value(self) -> u32 {
        match self {
            ErrorCause::UnsupportedAttribute => 401,
            ErrorCause::MissingAttribute => 402,
            ErrorCause::NasIdentificationMismatch => 403,
            ErrorCause::InvalidRequest => 404,
            ErrorCause::UnsupportedService => 405,
            ErrorCause::UnsupportedExtension => 406,
            ErrorCause::InvalidAttributeValue => 407,
            ErrorCause::AdministrativelyProhibited => 501,
            ErrorCause::SessionContextNotFound => 503,
            ErrorCause::SessionContextNotRemovable => 504,
            ErrorCause::ResourcesUnavailable => 506,
        }
    }
}

/// One ATTRIBUTE line of a dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DictAttribute {
    /// Its name.
    pub name: String,
    /// Its number (with the vendor when inside BEGIN-VENDOR).
    pub key: AttrKey,
    /// Its type word (`integer`, `integer64`, `string`, `ipaddr`, ...).
    pub kind: String,
}

/// A parsed dictionary: vendors, attributes and VALUE names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dictionary {
    /// `VENDOR name number`.
    pub vendors: Vec<(String, u32)>,
    /// `ATTRIBUTE` lines.
    pub attributes: Vec<DictAttribute>,
    /// `VALUE attribute name number`.
    pub values: Vec<(String, String, u64)>,
}

/// A line of a dictionary that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("dictionary line {line}: {message}")]
pub struct DictError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Dictionary {
    /// Parses FreeRADIUS dictionary syntax: `VENDOR`, `BEGIN-VENDOR`, `END-VENDOR`,
    /// `ATTRIBUTE`, `VALUE`, comments. `$INCLUDE` and other directives are errors (this
    /// parser reads one self-contained file).
    pub fn parse(text: &str) -> Result<Dictionary, DictError> {
        let mut d = Dictionary::default();
        let mut vendor: Option<u32> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |m: String| DictError { line, message: m };
            let content = raw.split('#').next().unwrap_or("");
            let words: Vec<&str> = content.split_whitespace().collect();
            let Some(first) = words.first() else { continue };
            let num = |w: &str| -> Result<u64, DictError> {
                w.parse::<u64>()
                    .map_err(|_| err(format!("{w:?} is not a number")))
            };
            match (*first, words.len()) {
                ("VENDOR", 3 | 4) => {
                    let n = num(words[2])?;
                    let n = u32::try_from(n).map_err(|_| err("vendor number too large".into()))?;
                    d.vendors.push((words[1].to_string(), n));
                }
                ("BEGIN-VENDOR", 2) => {
                    let v = d
                        .vendors
                        .iter()
                        .find(|(n, _)| n == words[1])
                        .ok_or_else(|| err(format!("vendor {} not declared", words[1])))?;
                    vendor = Some(v.1);
                }
                ("END-VENDOR", 2) => vendor = None,
                ("ATTRIBUTE", 4 | 5) => {
                    let n = num(words[2])?;
                    let n = u8::try_from(n)
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| err(format!("attribute number {n} not 1..=255")))?;
                    let key = match vendor {
                        Some(v) => AttrKey::Vendor(v, n),
                        None => AttrKey::Std(n),
                    };
                    if d.attributes
                        .iter()
                        .any(|a| a.key == key || a.name == words[1])
                    {
                        return Err(err(format!("{} declared twice", words[1])));
                    }
                    d.attributes.push(DictAttribute {
                        name: words[1].to_string(),
                        key,
                        kind: words[3].to_string(),
                    });
                }
                ("VALUE", 4) => {
                    if !d.attributes.iter().any(|a| a.name == words[1]) {
                        return Err(err(format!("VALUE for undeclared attribute {}", words[1])));
                    }
                    d.values
                        .push((words[1].to_string(), words[2].to_string(), num(words[3])?));
                }
                _ => return Err(err(format!("cannot read {:?}", content.trim()))),
            }
        }
        if vendor.is_some() {
            return Err(DictError {
                line: text.lines().count(),
                message: "BEGIN-VENDOR without END-VENDOR".into(),
            });
        }
        Ok(d)
    }

    /// The attribute with this name.
    pub fn attribute(&self, name: &str) -> Option<&DictAttribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The value of `VALUE attribute name`.
    pub fn value(&self, attribute: &str, name: &str) -> Option<u64> {
        self.values
            .iter()
            .find(|(a, n, _)| a == attribute && n == name)
            .map(|v| v.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_dictionary_matches_the_constants() {
        let d = Dictionary::parse(TOLLGATE_DICTIONARY).unwrap();
        assert_eq!(d.vendors, vec![("Tollgate".to_string(), TOLLGATE_VENDOR)]);
        assert_eq!(d.attributes.len(), tollgate::ALL.len());
        for (name, key, kind) in tollgate::ALL {
            let a = d
                .attribute(name)
                .unwrap_or_else(|| panic!("{name} missing from the dictionary"));
            assert_eq!(a.key, *key, "{name}");
            assert_eq!(a.kind, *kind, "{name}");
        }
        for c in DisconnectCause::ALL {
            assert_eq!(
                d.value("Tollgate-Disconnect-Cause", c.name()),
                Some(c.value() as u64),
                "{c:?}"
            );
        }
        assert_eq!(d.value("Tollgate-Login-Victim", "Earliest"), Some(0));
        // The session log and RADIUS report every fast-path cause alike.
        for c in tollgate_dataplane::session::DisconnectCause::ALL {
            assert_eq!(
                DisconnectCause::from(c).terminate_cause().value(),
                c.acct_terminate_cause(),
                "{c:?}"
            );
        }
        assert_eq!(d.value("Tollgate-Login-Victim", "Order"), Some(1));
    }

    #[test]
    fn parser_errors_name_the_line() {
        let e =
            Dictionary::parse("VENDOR X 1\nBEGIN-VENDOR X\nATTRIBUTE A 300 integer\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = Dictionary::parse("ATTRIBUTE A 1 integer\nATTRIBUTE A 2 integer\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = Dictionary::parse("BEGIN-VENDOR Nobody\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = Dictionary::parse("VENDOR X 1\nBEGIN-VENDOR X\n").unwrap_err();
        assert!(e.message.contains("END-VENDOR"));
        let e = Dictionary::parse("$INCLUDE other\n").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn terminate_causes_map() {
        assert_eq!(
            DisconnectCause::Restart.terminate_cause().value(),
            11,
            "NAS-Reboot"
        );
        assert_eq!(
            DisconnectCause::SessionTime.terminate_cause().name(),
            "Session-Timeout"
        );
        assert_eq!(DisconnectCause::Admin.terminate_cause().value(), 6);
    }
}
