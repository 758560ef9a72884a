//! What a successful login grants a subscriber: an address, the disconnect conditions
//! (DISC-1 A-F), declared bandwidth, allowed services, billing account. The local store
//! (`tollgate_control::store`) and RADIUS ([`crate::radius::attrs`]) both produce an
//! [`Authorization`], so the session code does not care which one answered.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// Which login goes when a subscriber has one login too many (DISC-1 D).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginVictim {
    /// The login that started first.
    #[default]
    Earliest,
    /// The login whose subscriber has the highest stored order value.
    Order,
}

impl LoginVictim {
    /// The spelling in config, CSV and the store.
    pub fn name(self) -> &'static str {
        match self {
            LoginVictim::Earliest => "earliest",
            LoginVictim::Order => "order",
        }
    }

    /// From its spelling.
    pub fn parse(s: &str) -> Option<LoginVictim> {
        match s {
            "earliest" => Some(LoginVictim::Earliest),
            "order" => Some(LoginVictim::Order),
            _ => None,
        }
    }
}

/// Per-subscriber disconnect conditions (DISC-1): any combination; the first met ends
/// the session. `None` means the condition is off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Conditions {
    /// A: seconds from login to disconnect.
    pub session_time_s: Option<u32>,
    /// B: seconds without a packet either way.
    pub idle_time_s: Option<u32>,
    /// B: count idle time only for packets to or from this server.
    pub idle_server: Option<Ipv4Addr>,
    /// C: octets both ways together.
    pub volume_bytes: Option<u64>,
    /// C: octets sent by the subscriber.
    pub volume_bytes_up: Option<u64>,
    /// C: octets sent to the subscriber.
    pub volume_bytes_down: Option<u64>,
    /// C: packets sent by the subscriber.
    pub volume_packets_up: Option<u64>,
    /// C: packets sent to the subscriber.
    pub volume_packets_down: Option<u64>,
    /// D: simultaneous logins allowed.
    pub max_logins: Option<u32>,
    /// D: which login goes when there is one too many.
    pub login_victim: LoginVictim,
    /// D: this subscriber's order value for [`LoginVictim::Order`] (highest goes first).
    pub login_order: Option<u32>,
    /// E: traffic rate limit, percent of the path's maximum.
    pub rate_ratio_percent: Option<u32>,
    /// E: the window the rate is measured over, seconds.
    pub rate_window_s: Option<u32>,
    /// F: the application's own idle timeout, seconds; the session ends just before.
    pub app_timeout_s: Option<u32>,
}

/// An L2TP tunnel an Access-Accept assigns (RFC 2868, one tag's attributes): a LAC
/// switches the PPPoE subscriber's PPP to it instead of terminating it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TunnelAssignment {
    /// The tag that grouped the attributes (0: none).
    pub tag: u8,
    /// Tunnel-Server-Endpoint: the LNS.
    pub server: Option<Ipv4Addr>,
    /// Tunnel-Assignment-Id: calls to the same LNS with the same one share a tunnel.
    pub assignment: Option<String>,
    /// Tunnel-Preference: lower is tried first.
    pub preference: Option<u32>,
    /// Tunnel-Client-Auth-Id.
    pub client_auth_id: Option<String>,
    /// Tunnel-Server-Auth-Id.
    pub server_auth_id: Option<String>,
    /// Tunnel-Password, decrypted by the RADIUS client: the tunnel's L2TP secret
    /// (instead of the realm's `secret` or `l2tp.secret`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Vec<u8>>,
}

/// What a login grants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Authorization {
    /// The address to give the subscriber (else one comes from the pool).
    pub framed_ip: Option<Ipv4Addr>,
    /// The address pool to take it from (RADIUS Framed-Pool; default: the first pool).
    pub pool: Option<String>,
    /// The largest packet the subscriber's link may carry (RADIUS Framed-MTU): a PPP
    /// session's MTU (and MSS clamp) is the least of this and the negotiated MRUs.
    pub framed_mtu: Option<u16>,
    /// Seconds between accounting Interim-Updates.
    pub interim_interval_s: Option<u32>,
    /// RADIUS Class values, echoed in every accounting record.
    pub class: Vec<Vec<u8>>,
    /// The disconnect conditions.
    pub conditions: Conditions,
    /// Declared bandwidth from the subscriber, bit/s.
    pub bandwidth_up: Option<u64>,
    /// Declared bandwidth to the subscriber, bit/s.
    pub bandwidth_down: Option<u64>,
    /// Services the subscriber may use (AUTHZ-1), by name.
    pub services: Vec<String>,
    /// The billing account usage is charged to.
    pub billing_account: Option<String>,
    /// A message for the subscriber or the log (RADIUS Reply-Message).
    pub reply_message: Option<String>,
    /// The IPoE session's /64 (RADIUS Framed-IPv6-Prefix), instead of one from the
    /// `[ipv6]` pool: address and length (64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framed_ipv6_prefix: Option<(Ipv6Addr, u8)>,
    /// The interface id of its DHCPv6 IA_NA address (RADIUS Framed-Interface-Id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framed_interface_id: Option<u64>,
    /// The prefix DHCPv6 IA_PD delegates (RADIUS Delegated-IPv6-Prefix), instead of
    /// one from `[ipv6] delegated_pool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_ipv6_prefix: Option<(Ipv6Addr, u8)>,
    /// L2TP tunnels to switch a PPPoE subscriber's PPP to (RADIUS tunnel attributes,
    /// RFC 2868: Tunnel-Type L2TP, Medium IPv4), by preference; empty: terminated here.
    pub tunnels: Vec<TunnelAssignment>,
}
