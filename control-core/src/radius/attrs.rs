//! What Tollgate reads from and writes into RADIUS packets: the [`Authorization`] an
//! Access-Accept (or a CoA-Request) carries, and Accounting-Request Start /
//! Interim-Update / Stop built from an [`AcctRecord`].

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::dict::{AcctStatusType, DisconnectCause, std_attr as sa, tollgate as tg};
use super::packet::{AttrKey, Attribute, Code, MAX_PACKET_LEN, MAX_VALUE_LEN, Packet, ValueError};
use crate::authz::{Authorization, LoginVictim, TunnelAssignment};

/// Reads the attributes Tollgate understands; others are ignored. A known attribute
/// whose value has the wrong shape is an error naming it (the login should not proceed
/// on half-read limits).
pub fn authorization(p: &Packet) -> Result<Authorization, ValueError> {
    let mut a = Authorization::default();
    apply(&mut a, p)?;
    Ok(a)
}

/// True if `key` is an attribute [`apply`] reads.
pub fn is_authorization_attribute(key: AttrKey) -> bool {
    [
        sa::FRAMED_IP_ADDRESS,
        sa::SESSION_TIMEOUT,
        sa::IDLE_TIMEOUT,
        sa::ACCT_INTERIM_INTERVAL,
        sa::FRAMED_POOL,
        sa::FRAMED_MTU,
        sa::CLASS,
        sa::REPLY_MESSAGE,
        sa::FRAMED_IPV6_PREFIX,
        sa::FRAMED_INTERFACE_ID,
        sa::DELEGATED_IPV6_PREFIX,
        sa::TUNNEL_TYPE,
        sa::TUNNEL_MEDIUM_TYPE,
        sa::TUNNEL_SERVER_ENDPOINT,
        sa::TUNNEL_ASSIGNMENT_ID,
        sa::TUNNEL_PREFERENCE,
        sa::TUNNEL_CLIENT_AUTH_ID,
        sa::TUNNEL_SERVER_AUTH_ID,
        sa::TUNNEL_PASSWORD,
    ]
    .contains(&key)
        || tg::ALL
            .iter()
            .any(|(_, k, _)| *k == key && *k != tg::DISCONNECT_CAUSE)
}

/// Applies the attributes of `p` over `a` (what a CoA-Request does to a session's
/// authorization). Repeatable attributes (Class, Tollgate-Allowed-Service) replace the
/// whole list when present.
pub fn apply(a: &mut Authorization, p: &Packet) -> Result<(), ValueError> {
    let mut class = Vec::new();
    let mut services = Vec::new();
    let mut tunnels = Tunnels::default();
    let c = &mut a.conditions;
    for attr in &p.attributes {
        if tunnels.read(attr)? {
            continue;
        }
        match attr.key {
            k if k == sa::FRAMED_IP_ADDRESS => a.framed_ip = Some(attr.as_ipv4()?),
            k if k == sa::SESSION_TIMEOUT => c.session_time_s = Some(attr.as_u32()?),
            k if k == sa::IDLE_TIMEOUT => c.idle_time_s = Some(attr.as_u32()?),
            k if k == sa::ACCT_INTERIM_INTERVAL => a.interim_interval_s = Some(attr.as_u32()?),
            k if k == sa::FRAMED_POOL => a.pool = Some(attr.as_text()?.to_string()),
            k if k == sa::FRAMED_MTU => {
                a.framed_mtu = Some(attr.as_u32()?.min(u16::MAX as u32) as u16)
            }
            k if k == sa::CLASS => class.push(attr.value.clone()),
            k if k == sa::REPLY_MESSAGE => a.reply_message = Some(attr.as_text()?.to_string()),
            k if k == sa::FRAMED_IPV6_PREFIX => a.framed_ipv6_prefix = Some(attr.as_ipv6_prefix()?),
            k if k == sa::FRAMED_INTERFACE_ID => a.framed_interface_id = Some(attr.as_u64()?),
            k if k == sa::DELEGATED_IPV6_PREFIX => {
                a.delegated_ipv6_prefix = Some(attr.as_ipv6_prefix()?)
            }
            k if k == tg::VOLUME_LIMIT => c.volume_bytes = Some(attr.as_u64()?),
            k if k == tg::VOLUME_LIMIT_UP => c.volume_bytes_up = Some(attr.as_u64()?),
            k if k == tg::VOLUME_LIMIT_DOWN => c.volume_bytes_down = Some(attr.as_u64()?),
            k if k == tg::PACKET_LIMIT_UP => c.volume_packets_up = Some(attr.as_u64()?),
            k if k == tg::PACKET_LIMIT_DOWN => c.volume_packets_down = Some(attr.as_u64()?),
            k if k == tg::BANDWIDTH_UP => a.bandwidth_up = Some(attr.as_u64()?),
            k if k == tg::BANDWIDTH_DOWN => a.bandwidth_down = Some(attr.as_u64()?),
            k if k == tg::ALLOWED_SERVICE => services.push(attr.as_text()?.to_string()),
            k if k == tg::MAX_LOGINS => c.max_logins = Some(attr.as_u32()?),
            k if k == tg::LOGIN_VICTIM => {
                c.login_victim = match attr.as_u32()? {
                    0 => LoginVictim::Earliest,
                    _ => LoginVictim::Order,
                }
            }
            k if k == tg::LOGIN_ORDER => c.login_order = Some(attr.as_u32()?),
            k if k == tg::RATE_RATIO => c.rate_ratio_percent = Some(attr.as_u32()?),
            k if k == tg::RATE_WINDOW => c.rate_window_s = Some(attr.as_u32()?),
            k if k == tg::APP_TIMEOUT => c.app_timeout_s = Some(attr.as_u32()?),
            k if k == tg::IDLE_SERVER => c.idle_server = Some(attr.as_ipv4()?),
            k if k == tg::BILLING_ACCOUNT => a.billing_account = Some(attr.as_text()?.to_string()),
            _ => {}
        }
    }
    if !class.is_empty() {
        a.class = class;
    }
    if !services.is_empty() {
        a.services = services;
    }
    if tunnels.seen {
        a.tunnels = tunnels.l2tp();
    }
    Ok(())
}

/// RFC 2868 tunnel attributes being read, by tag.
#[derive(Default)]
struct Tunnels {
    seen: bool,
    /// (tag, Tunnel-Type, Tunnel-Medium-Type, what else the tag says).
    by_tag: Vec<(u8, Option<u32>, Option<u32>, TunnelAssignment)>,
}

/// Tunnel-Type value for L2TP, Tunnel-Medium-Type for IPv4 (RFC 2868 3.1, 3.2).
const TUNNEL_L2TP: u32 = 3;
const MEDIUM_IPV4: u32 = 1;

/// A tagged integer (RFC 2868 3.1): the tag in the first octet, the value in the other
/// three.
fn tagged_u32(attr: &Attribute) -> Result<(u8, u32), ValueError> {
    let v = attr.as_u32()?;
    Ok(((v >> 24) as u8, v & 0x00ff_ffff))
}

/// A tagged string: a first octet of 0x01..=0x1f is the tag, else there is none (and it
/// is the value's).
fn tagged_text(attr: &Attribute) -> Result<(u8, String), ValueError> {
    let (tag, v) = match attr.value.first() {
        Some(&t) if (1..=0x1f).contains(&t) => (t, &attr.value[1..]),
        _ => (0, &attr.value[..]),
    };
    let s = std::str::from_utf8(v).map_err(|_| ValueError::NotText { key: attr.key })?;
    Ok((tag, s.to_string()))
}

impl Tunnels {
    fn tag(&mut self, tag: u8) -> &mut (u8, Option<u32>, Option<u32>, TunnelAssignment) {
        self.seen = true;
        let i = match self.by_tag.iter().position(|t| t.0 == tag) {
            Some(i) => i,
            None => {
                self.by_tag.push((
                    tag,
                    None,
                    None,
                    TunnelAssignment {
                        tag,
                        ..TunnelAssignment::default()
                    },
                ));
                self.by_tag.len() - 1
            }
        };
        &mut self.by_tag[i]
    }

    /// Takes `attr` if it is a tunnel attribute (true).
    fn read(&mut self, attr: &Attribute) -> Result<bool, ValueError> {
        match attr.key {
            k if k == sa::TUNNEL_TYPE => {
                let (t, v) = tagged_u32(attr)?;
                self.tag(t).1 = Some(v);
            }
            k if k == sa::TUNNEL_MEDIUM_TYPE => {
                let (t, v) = tagged_u32(attr)?;
                self.tag(t).2 = Some(v);
            }
            k if k == sa::TUNNEL_PREFERENCE => {
                let (t, v) = tagged_u32(attr)?;
                self.tag(t).3.preference = Some(v);
            }
            k if k == sa::TUNNEL_SERVER_ENDPOINT => {
                let (t, v) = tagged_text(attr)?;
                // Dotted decimal (RFC 2868 3.5 for IPv4); a name is not resolved here.
                self.tag(t).3.server = v.trim().parse().ok();
            }
            k if k == sa::TUNNEL_ASSIGNMENT_ID => {
                let (t, v) = tagged_text(attr)?;
                self.tag(t).3.assignment = Some(v);
            }
            k if k == sa::TUNNEL_CLIENT_AUTH_ID => {
                let (t, v) = tagged_text(attr)?;
                self.tag(t).3.client_auth_id = Some(v);
            }
            k if k == sa::TUNNEL_SERVER_AUTH_ID => {
                let (t, v) = tagged_text(attr)?;
                self.tag(t).3.server_auth_id = Some(v);
            }
            // Decrypted by the RADIUS client (client::decrypt_tunnel_passwords): the
            // tag octet, then the password.
            k if k == sa::TUNNEL_PASSWORD => {
                if let Some((&t, pw)) = attr.value.split_first() {
                    self.tag(t).3.password = Some(pw.to_vec());
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The L2TP tunnels over IPv4 with a server endpoint, lowest preference first (the
    /// order given among equals).
    fn l2tp(self) -> Vec<TunnelAssignment> {
        let mut v: Vec<TunnelAssignment> = self
            .by_tag
            .into_iter()
            .filter(|(_, kind, medium, t)| {
                *kind == Some(TUNNEL_L2TP)
                    && medium.is_none_or(|m| m == MEDIUM_IPV4)
                    && t.server.is_some()
            })
            .map(|(_, _, _, t)| t)
            .collect();
        v.sort_by_key(|t| t.preference.unwrap_or(u32::MAX));
        v
    }
}

/// Who we are, in every Access- and Accounting-Request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NasIdentity {
    /// NAS-Identifier.
    pub identifier: String,
    /// NAS-IP-Address, when configured.
    pub ip: Option<Ipv4Addr>,
}

impl NasIdentity {
    fn push(&self, p: &mut Packet) {
        if !self.identifier.is_empty() {
            p.push(Attribute::text(sa::NAS_IDENTIFIER, &self.identifier));
        }
        if let Some(ip) = self.ip {
            p.push(Attribute::ipv4(sa::NAS_IP_ADDRESS, ip));
        }
    }
}

/// An Access-Request for PAP: User-Name, User-Password (in clear here; hidden when the
/// client signs it), Calling-Station-Id when known, the NAS identity.
pub fn access_request(
    nas: &NasIdentity,
    user: &str,
    password: &[u8],
    calling_station_id: Option<&str>,
) -> Packet {
    let mut p = Packet::new(Code::AccessRequest, 0);
    p.push(Attribute::text(sa::USER_NAME, user));
    p.push(Attribute::octets(sa::USER_PASSWORD, password));
    if let Some(c) = calling_station_id {
        p.push(Attribute::text(sa::CALLING_STATION_ID, c));
    }
    nas.push(&mut p);
    p.push(Attribute::u32(sa::SERVICE_TYPE, 2)); // Framed-User
    p
}

/// A CHAP Access-Request (RFC 2865 5.3, 5.40): User-Name, CHAP-Password (the
/// Identifier, then the response) and CHAP-Challenge, the rest as [`access_request`].
pub fn chap_access_request(
    nas: &NasIdentity,
    user: &str,
    (id, challenge, response): (u8, &[u8], &[u8]),
    calling_station_id: Option<&str>,
) -> Packet {
    let mut p = Packet::new(Code::AccessRequest, 0);
    p.push(Attribute::text(sa::USER_NAME, user));
    let mut pw = Vec::with_capacity(1 + response.len());
    pw.push(id);
    pw.extend_from_slice(response);
    p.push(Attribute::octets(sa::CHAP_PASSWORD, pw));
    p.push(Attribute::octets(sa::CHAP_CHALLENGE, challenge));
    if let Some(c) = calling_station_id {
        p.push(Attribute::text(sa::CALLING_STATION_ID, c));
    }
    nas.push(&mut p);
    p.push(Attribute::u32(sa::SERVICE_TYPE, 2)); // Framed-User
    p
}

/// The line of a PPPoE subscriber, as RADIUS and the records name it (ACC-1, ACC-4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PppoeLine {
    /// NAS-Port-Id: the access port's name and the VLANs (`access0.100.200`).
    pub nas_port_id: String,
    /// TR-101 Agent-Circuit-Id from the PADI/PADR, when the access node inserted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_id: Option<Vec<u8>>,
    /// TR-101 Agent-Remote-Id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<Vec<u8>>,
    /// An IPoE (DHCP) subscriber's line, not PPP: no Framed-Protocol (issue 16).
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub ipoe: bool,
}

impl PppoeLine {
    /// Adds what a PPP subscriber's Access- and Accounting-Requests carry:
    /// Framed-Protocol PPP (not for an IPoE line), NAS-Port-Type Ethernet, NAS-Port-Id,
    /// and the TR-101 identifiers (RFC 4679). Service-Type Framed is added unless `p` has
    /// one.
    pub fn push(&self, p: &mut Packet) {
        if p.get(sa::SERVICE_TYPE).is_none() {
            p.push(Attribute::u32(sa::SERVICE_TYPE, 2)); // Framed-User
        }
        if !self.ipoe {
            p.push(Attribute::u32(sa::FRAMED_PROTOCOL, 1)); // PPP
        }
        p.push(Attribute::u32(sa::NAS_PORT_TYPE, 15)); // Ethernet
        let id = self.nas_port_id.as_bytes();
        p.push(Attribute::octets(
            sa::NAS_PORT_ID,
            &id[..id.len().min(MAX_VALUE_LEN)],
        ));
        let vsa_max = MAX_VALUE_LEN - 6;
        if let Some(c) = &self.circuit_id {
            p.push(Attribute::octets(
                sa::AGENT_CIRCUIT_ID,
                &c[..c.len().min(vsa_max)],
            ));
        }
        if let Some(r) = &self.remote_id {
            p.push(Attribute::octets(
                sa::AGENT_REMOTE_ID,
                &r[..r.len().min(vsa_max)],
            ));
        }
    }
}

/// A session's counters, from the subscriber's side: "up" is what the subscriber sent
/// (RADIUS Acct-Input), "down" what it received (Acct-Output).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Octets sent by the subscriber.
    pub octets_up: u64,
    /// Octets sent to the subscriber.
    pub octets_down: u64,
    /// Packets sent by the subscriber.
    pub packets_up: u64,
    /// Packets sent to the subscriber.
    pub packets_down: u64,
}

/// A session's counters as last reported by its worker, between accounting records:
/// the spool keeps them so that a Stop recovered after a crash carries them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastKnown {
    /// Acct-Session-Id.
    pub session_id: String,
    /// The counters.
    pub counters: Counters,
    /// When the worker read them (Unix seconds).
    pub at_unix: u64,
}

/// One accounting record: what the spool keeps and what becomes an Accounting-Request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcctRecord {
    /// Start, Interim-Update or Stop.
    pub status: AcctStatusType,
    /// Acct-Session-Id: unique per session.
    pub session_id: String,
    /// User-Name.
    pub user_name: String,
    /// Framed-IP-Address.
    pub framed_ip: Option<Ipv4Addr>,
    /// Calling-Station-Id: the subscriber's MAC or mobile id.
    pub calling_station_id: Option<String>,
    /// Class values from the Access-Accept, echoed.
    pub class: Vec<Vec<u8>>,
    /// Counters at the event (zero for Start).
    pub counters: Counters,
    /// Acct-Session-Time, seconds since the session started.
    pub session_time_s: u32,
    /// Why the session ended (Stop only).
    pub cause: Option<DisconnectCause>,
    /// When the event happened, seconds since 1970 (Event-Timestamp).
    pub event_time: u64,
    /// A PPPoE subscriber's line (Framed-Protocol PPP, NAS-Port-Id, TR-101 ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<PppoeLine>,
    /// The session's IPv6 (Framed-IPv6-Prefix, Framed-Interface-Id,
    /// Delegated-IPv6-Prefix), when it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<AcctIpv6>,
    /// A subscriber switched into an L2TP tunnel (LAC): the tunnel's attributes
    /// (RFC 2867, RFC 2868).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<AcctTunnel>,
}

/// The L2TP tunnel of a switched subscriber in its accounting records (RFC 2867): sent
/// with tag 1 (RFC 2868 3: one tunnel, tagged so that its attributes group).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AcctTunnel {
    /// Acct-Tunnel-Connection: the call's L2TP ids, `TUNNEL/SESSION` ours then the LNS's.
    pub connection: String,
    /// Tunnel-Client-Endpoint: our address (the LAC's).
    pub client_endpoint: Option<Ipv4Addr>,
    /// Tunnel-Server-Endpoint: the LNS's address.
    pub server_endpoint: Option<Ipv4Addr>,
    /// Tunnel-Assignment-Id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment: Option<String>,
    /// Tunnel-Client-Auth-Id: our L2TP Host Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth_id: Option<String>,
    /// Tunnel-Server-Auth-Id: the LNS's Host Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_auth_id: Option<String>,
}

/// The tag of the one tunnel an accounting record names.
const ACCT_TUNNEL_TAG: u8 = 1;

impl AcctTunnel {
    fn push(&self, p: &mut Packet) {
        let tag = ACCT_TUNNEL_TAG;
        let tagged_u32 = |key: AttrKey, v: u32| Attribute::u32(key, (tag as u32) << 24 | v);
        let tagged_text = |key: AttrKey, v: &str| {
            let b = v.as_bytes();
            let mut o = Vec::with_capacity(b.len().min(MAX_VALUE_LEN - 1) + 1);
            o.push(tag);
            o.extend_from_slice(&b[..b.len().min(MAX_VALUE_LEN - 1)]);
            Attribute::octets(key, o)
        };
        p.push(tagged_u32(sa::TUNNEL_TYPE, TUNNEL_L2TP));
        p.push(tagged_u32(sa::TUNNEL_MEDIUM_TYPE, MEDIUM_IPV4));
        if let Some(a) = self.client_endpoint {
            p.push(tagged_text(sa::TUNNEL_CLIENT_ENDPOINT, &a.to_string()));
        }
        if let Some(a) = self.server_endpoint {
            p.push(tagged_text(sa::TUNNEL_SERVER_ENDPOINT, &a.to_string()));
        }
        let c = self.connection.as_bytes();
        p.push(Attribute::octets(
            sa::ACCT_TUNNEL_CONNECTION,
            &c[..c.len().min(MAX_VALUE_LEN)],
        ));
        if let Some(v) = &self.assignment {
            p.push(tagged_text(sa::TUNNEL_ASSIGNMENT_ID, v));
        }
        if let Some(v) = &self.client_auth_id {
            p.push(tagged_text(sa::TUNNEL_CLIENT_AUTH_ID, v));
        }
        if let Some(v) = &self.server_auth_id {
            p.push(tagged_text(sa::TUNNEL_SERVER_AUTH_ID, v));
        }
    }
}

/// A session's IPv6 in its accounting records (RFC 3162, RFC 4818).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AcctIpv6 {
    /// Framed-IPv6-Prefix: its /64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framed_prefix: Option<(Ipv6Addr, u8)>,
    /// Framed-Interface-Id: the interface id of its DHCPv6 IA_NA address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_id: Option<u64>,
    /// Delegated-IPv6-Prefix: its DHCPv6 IA_PD prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegated_prefix: Option<(Ipv6Addr, u8)>,
}

impl AcctIpv6 {
    fn push(&self, p: &mut Packet) {
        if let Some(id) = self.interface_id {
            p.push(Attribute::u64(sa::FRAMED_INTERFACE_ID, id));
        }
        if let Some((a, l)) = self.framed_prefix {
            p.push(Attribute::ipv6_prefix(sa::FRAMED_IPV6_PREFIX, a, l));
        }
        if let Some((a, l)) = self.delegated_prefix {
            p.push(Attribute::ipv6_prefix(sa::DELEGATED_IPV6_PREFIX, a, l));
        }
    }
}

impl AcctRecord {
    /// This record with the session's IPv6 attributes.
    pub fn with_ipv6(self, ipv6: Option<AcctIpv6>) -> AcctRecord {
        AcctRecord { ipv6, ..self }
    }

    /// The Accounting-Request for this record as sent at `now_unix` (Acct-Delay-Time is
    /// the difference). Octet counters above 2^32 use Gigawords (RFC 2869); packet
    /// counters are sent modulo 2^32 (RADIUS has no wider packet counters).
    pub fn to_request(&self, nas: &NasIdentity, now_unix: u64) -> Packet {
        self.to_request_fitted(nas, now_unix).0
    }

    /// The Accounting-Request, always encodable in one RADIUS packet (4096 octets, with
    /// the Message-Authenticator the client adds): a value longer than an attribute can
    /// carry is cut (User-Name) or left out (Calling-Station-Id, Class), and the Class
    /// attributes that do not fit after the others are left out, last first. What was
    /// left out is returned, for the caller to say and count.
    pub fn to_request_fitted(&self, nas: &NasIdentity, now_unix: u64) -> (Packet, LeftOut) {
        let mut left = LeftOut::default();
        let mut p = Packet::new(Code::AccountingRequest, 0);
        p.push(Attribute::u32(sa::ACCT_STATUS_TYPE, self.status.value()));
        let mut text = |key: AttrKey, v: &str, cut: bool, left: &mut LeftOut| {
            let b = v.as_bytes();
            if b.len() <= MAX_VALUE_LEN {
                p.push(Attribute::octets(key, b));
            } else if cut {
                left.cut += 1;
                p.push(Attribute::octets(key, &b[..MAX_VALUE_LEN]));
            } else {
                left.attributes += 1;
            }
        };
        text(sa::ACCT_SESSION_ID, &self.session_id, true, &mut left);
        text(sa::USER_NAME, &self.user_name, true, &mut left);
        if let Some(c) = &self.calling_station_id {
            text(sa::CALLING_STATION_ID, c, false, &mut left);
        }
        nas.push(&mut p);
        if let Some(ip) = self.framed_ip {
            p.push(Attribute::ipv4(sa::FRAMED_IP_ADDRESS, ip));
        }
        if let Some(l) = &self.access {
            l.push(&mut p);
        }
        if let Some(v6) = &self.ipv6 {
            v6.push(&mut p);
        }
        if let Some(t) = &self.tunnel {
            t.push(&mut p);
        }
        let class_at = p.attributes.len();
        let delay = now_unix
            .saturating_sub(self.event_time)
            .min(u32::MAX as u64) as u32;
        p.push(Attribute::u32(sa::ACCT_DELAY_TIME, delay));
        p.push(Attribute::u32(
            sa::EVENT_TIMESTAMP,
            self.event_time.min(u32::MAX as u64) as u32,
        ));
        p.push(Attribute::u32(sa::ACCT_AUTHENTIC, 1)); // RADIUS (or local, reported alike)
        if self.status != AcctStatusType::Start {
            let c = &self.counters;
            p.push(Attribute::u32(sa::ACCT_INPUT_OCTETS, c.octets_up as u32));
            p.push(Attribute::u32(
                sa::ACCT_INPUT_GIGAWORDS,
                (c.octets_up >> 32) as u32,
            ));
            p.push(Attribute::u32(sa::ACCT_OUTPUT_OCTETS, c.octets_down as u32));
            p.push(Attribute::u32(
                sa::ACCT_OUTPUT_GIGAWORDS,
                (c.octets_down >> 32) as u32,
            ));
            p.push(Attribute::u32(sa::ACCT_INPUT_PACKETS, c.packets_up as u32));
            p.push(Attribute::u32(
                sa::ACCT_OUTPUT_PACKETS,
                c.packets_down as u32,
            ));
            p.push(Attribute::u32(sa::ACCT_SESSION_TIME, self.session_time_s));
        }
        if self.status == AcctStatusType::Stop {
            let cause = self.cause.unwrap_or(DisconnectCause::Logout);
            p.push(Attribute::u32(
                sa::ACCT_TERMINATE_CAUSE,
                cause.terminate_cause().value(),
            ));
            p.push(Attribute::u32(tg::DISCONNECT_CAUSE, cause.value()));
        }
        // Class last, in order, while it fits.
        let mut room = MAX_PACKET_LEN.saturating_sub(p.encoded_len() + MESSAGE_AUTHENTICATOR_LEN);
        let mut class = Vec::with_capacity(self.class.len());
        for c in &self.class {
            if c.len() <= MAX_VALUE_LEN && c.len() + 2 <= room {
                room -= c.len() + 2;
                class.push(Attribute::octets(sa::CLASS, c.clone()));
            } else {
                left.class += 1;
                left.class_octets += c.len();
            }
        }
        p.attributes.splice(class_at..class_at, class);
        (p, left)
    }
}

/// The octets of the Message-Authenticator every request carries (type, length, 16).
const MESSAGE_AUTHENTICATOR_LEN: usize = 18;

/// What [`AcctRecord::to_request_fitted`] left out of a request so that it fits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// Class attributes left out.
    pub class: usize,
    /// Their octets.
    pub class_octets: usize,
    /// Other attributes left out (a Calling-Station-Id over 253 octets).
    pub attributes: usize,
    /// Values cut to 253 octets (User-Name, Acct-Session-Id).
    pub cut: usize,
}

impl LeftOut {
    /// True when nothing was left out or cut.
    pub fn is_empty(&self) -> bool {
        *self == LeftOut::default()
    }
}

/// Reads the octet counters back out of an Accounting-Request (tests, and a peer
/// gateway's records): `(input, output)` with Gigawords applied.
pub fn octets(p: &Packet) -> Result<(u64, u64), ValueError> {
    let get = |k: AttrKey| -> Result<u64, ValueError> {
        p.get(k).map_or(Ok(0), |a| a.as_u32().map(u64::from))
    };
    Ok((
        get(sa::ACCT_INPUT_GIGAWORDS)? << 32 | get(sa::ACCT_INPUT_OCTETS)?,
        get(sa::ACCT_OUTPUT_GIGAWORDS)? << 32 | get(sa::ACCT_OUTPUT_OCTETS)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3162 / RFC 4818: Framed-IPv6-Prefix, Framed-Interface-Id and
    /// Delegated-IPv6-Prefix in an Access-Accept, on the wire as sent by FreeRADIUS
    /// (ipv6prefix: reserved, length, only the octets the length covers); malformed
    /// ones are errors; the same three out in accounting, byte for byte.
    #[test]
    fn ipv6_attributes_in_and_out() {
        let mut p = Packet::new(Code::AccessAccept, 1);
        p.push(Attribute::octets(
            sa::FRAMED_IPV6_PREFIX,
            vec![0, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 7, 0, 9],
        ))
        .push(Attribute::octets(
            sa::FRAMED_INTERFACE_ID,
            vec![0, 0, 0, 0, 0, 0, 0, 0x42],
        ))
        .push(Attribute::octets(
            sa::DELEGATED_IPV6_PREFIX,
            vec![0, 56, 0x20, 0x01, 0x0d, 0xb8, 0x02, 0, 0x05],
        ));
        let a = authorization(&p).unwrap();
        let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap();
        assert_eq!(a.framed_ipv6_prefix, Some((v6("2001:db8:7:9::"), 64)));
        assert_eq!(a.framed_interface_id, Some(0x42));
        assert_eq!(
            a.delegated_ipv6_prefix,
            Some((v6("2001:db8:200:500::"), 56))
        );
        for bad in [vec![0], vec![0, 129], vec![0, 64, 0x20, 0x01]] {
            let mut p = Packet::new(Code::AccessAccept, 1);
            p.push(Attribute::octets(sa::DELEGATED_IPV6_PREFIX, bad.clone()));
            assert!(authorization(&p).is_err(), "{bad:?}");
        }
        // Host bits past the length are cleared.
        let mut p = Packet::new(Code::AccessAccept, 1);
        p.push(Attribute::octets(
            sa::DELEGATED_IPV6_PREFIX,
            vec![0, 60, 0x20, 0x01, 0x0d, 0xb8, 0x02, 0, 0x05, 0xff],
        ));
        assert_eq!(
            authorization(&p).unwrap().delegated_ipv6_prefix,
            Some((v6("2001:db8:200:5f0::"), 60))
        );
        let r = AcctRecord {
            status: AcctStatusType::Start,
            session_id: "s".into(),
            user_name: "u".into(),
            framed_ip: None,
            calling_station_id: None,
            class: Vec::new(),
            counters: Counters::default(),
            session_time_s: 0,
            cause: None,
            event_time: 0,
            access: None,
            ipv6: Some(AcctIpv6 {
                framed_prefix: Some((v6("2001:db8:100:1::"), 64)),
                interface_id: Some(1),
                delegated_prefix: Some((v6("2001:db8:200::"), 56)),
            }),
            tunnel: None,
        };
        let req = r.to_request(&NasIdentity::default(), 0);
        let got = |k| req.get(k).map(|a| a.value.clone());
        assert_eq!(
            got(sa::FRAMED_IPV6_PREFIX),
            Some(vec![0, 64, 0x20, 0x01, 0x0d, 0xb8, 0x01, 0, 0, 0x01])
        );
        assert_eq!(
            got(sa::FRAMED_INTERFACE_ID),
            Some(vec![0, 0, 0, 0, 0, 0, 0, 1])
        );
        assert_eq!(
            got(sa::DELEGATED_IPV6_PREFIX),
            Some(vec![0, 56, 0x20, 0x01, 0x0d, 0xb8, 0x02, 0, 0])
        );
        // And none of them without IPv6.
        let req = AcctRecord { ipv6: None, ..r }.to_request(&NasIdentity::default(), 0);
        assert!(req.get(sa::FRAMED_IPV6_PREFIX).is_none());
        assert!(req.get(sa::DELEGATED_IPV6_PREFIX).is_none());
    }

    /// RFC 2867 / RFC 2868: a switched subscriber's record carries its tunnel, every
    /// tunnel attribute with tag 1 (integers: the tag in the first octet; strings: a tag
    /// octet before the text), Acct-Tunnel-Connection untagged; the optional ones only
    /// when set; none without a tunnel.
    #[test]
    fn tunnel_attributes_in_accounting_on_the_wire() {
        let r = AcctRecord {
            status: AcctStatusType::Stop,
            session_id: "s".into(),
            user_name: "u@isp.example".into(),
            framed_ip: None,
            calling_station_id: None,
            class: Vec::new(),
            counters: Counters::default(),
            session_time_s: 0,
            cause: None,
            event_time: 0,
            access: None,
            ipv6: None,
            tunnel: Some(AcctTunnel {
                connection: "2177/1-17/257".into(),
                client_endpoint: Some(Ipv4Addr::new(192, 0, 2, 1)),
                server_endpoint: Some(Ipv4Addr::new(192, 0, 2, 11)),
                assignment: Some("isp".into()),
                client_auth_id: Some("tg-lac".into()),
                server_auth_id: Some("lns-1".into()),
            }),
        };
        let req = r.to_request(&NasIdentity::default(), 0);
        let got = |k| req.get(k).map(|a| a.value.clone());
        let tagged = |v: &str| [&[1u8][..], v.as_bytes()].concat();
        assert_eq!(got(sa::TUNNEL_TYPE), Some(vec![1, 0, 0, 3]));
        assert_eq!(got(sa::TUNNEL_MEDIUM_TYPE), Some(vec![1, 0, 0, 1]));
        assert_eq!(got(sa::TUNNEL_CLIENT_ENDPOINT), Some(tagged("192.0.2.1")));
        assert_eq!(got(sa::TUNNEL_SERVER_ENDPOINT), Some(tagged("192.0.2.11")));
        assert_eq!(
            got(sa::ACCT_TUNNEL_CONNECTION),
            Some(b"2177/1-17/257".to_vec())
        );
        assert_eq!(got(sa::TUNNEL_ASSIGNMENT_ID), Some(tagged("isp")));
        assert_eq!(got(sa::TUNNEL_CLIENT_AUTH_ID), Some(tagged("tg-lac")));
        assert_eq!(got(sa::TUNNEL_SERVER_AUTH_ID), Some(tagged("lns-1")));
        // Type numbers as RFC 2867/2868 give them, on the encoded packet.
        let bytes = req.encode().unwrap();
        let find = |t: u8, v: &[u8]| {
            let mut a = vec![t, v.len() as u8 + 2];
            a.extend_from_slice(v);
            bytes.windows(a.len()).any(|w| w == a)
        };
        assert!(find(64, &[1, 0, 0, 3]), "Tunnel-Type");
        assert!(find(65, &[1, 0, 0, 1]), "Tunnel-Medium-Type");
        assert!(find(66, &tagged("192.0.2.1")), "Tunnel-Client-Endpoint");
        assert!(find(67, &tagged("192.0.2.11")), "Tunnel-Server-Endpoint");
        assert!(find(68, b"2177/1-17/257"), "Acct-Tunnel-Connection");
        assert!(find(82, &tagged("isp")), "Tunnel-Assignment-Id");
        assert!(find(90, &tagged("tg-lac")), "Tunnel-Client-Auth-Id");
        assert!(find(91, &tagged("lns-1")), "Tunnel-Server-Auth-Id");
        // Optional ones left out when unset.
        let bare = AcctRecord {
            tunnel: Some(AcctTunnel {
                connection: "1/2-3/4".into(),
                server_endpoint: Some(Ipv4Addr::new(192, 0, 2, 11)),
                ..AcctTunnel::default()
            }),
            ..r.clone()
        }
        .to_request(&NasIdentity::default(), 0);
        assert!(bare.get(sa::TUNNEL_TYPE).is_some());
        for k in [
            sa::TUNNEL_CLIENT_ENDPOINT,
            sa::TUNNEL_ASSIGNMENT_ID,
            sa::TUNNEL_CLIENT_AUTH_ID,
            sa::TUNNEL_SERVER_AUTH_ID,
        ] {
            assert!(bare.get(k).is_none(), "{k:?}");
        }
        // No tunnel: none of them.
        let plain = AcctRecord { tunnel: None, ..r }.to_request(&NasIdentity::default(), 0);
        for k in [
            sa::TUNNEL_TYPE,
            sa::TUNNEL_MEDIUM_TYPE,
            sa::TUNNEL_SERVER_ENDPOINT,
            sa::ACCT_TUNNEL_CONNECTION,
        ] {
            assert!(plain.get(k).is_none(), "{k:?}");
        }
    }

    #[test]
    fn tunnel_attributes_are_grouped_by_tag_and_ordered_by_preference() {
        let tagged = |key, tag: u8, v: u32| Attribute::u32(key, (tag as u32) << 24 | v);
        let text = |key, tag: u8, v: &str| {
            let mut b = vec![tag];
            b.extend_from_slice(v.as_bytes());
            Attribute::octets(key, b)
        };
        let mut p = Packet::new(Code::AccessAccept, 1);
        p.push(tagged(sa::TUNNEL_TYPE, 1, 3))
            .push(tagged(sa::TUNNEL_MEDIUM_TYPE, 1, 1))
            .push(text(sa::TUNNEL_SERVER_ENDPOINT, 1, "192.0.2.12"))
            .push(text(sa::TUNNEL_ASSIGNMENT_ID, 1, "isp-b"))
            .push(tagged(sa::TUNNEL_PREFERENCE, 1, 20))
            // As the client leaves it, decrypted: the tag, then the password.
            .push(Attribute::octets(
                sa::TUNNEL_PASSWORD,
                [&[1u8][..], b"isp-b secret"].concat(),
            ))
            .push(tagged(sa::TUNNEL_TYPE, 2, 3))
            .push(tagged(sa::TUNNEL_MEDIUM_TYPE, 2, 1))
            .push(text(sa::TUNNEL_SERVER_ENDPOINT, 2, "192.0.2.11"))
            .push(tagged(sa::TUNNEL_PREFERENCE, 2, 10))
            .push(text(sa::TUNNEL_CLIENT_AUTH_ID, 2, "lac-1"))
            .push(text(sa::TUNNEL_SERVER_AUTH_ID, 2, "lns-1"))
            // Tag 3 is PPTP: not an L2TP tunnel.
            .push(tagged(sa::TUNNEL_TYPE, 3, 1))
            .push(text(sa::TUNNEL_SERVER_ENDPOINT, 3, "192.0.2.13"))
            // Untagged: a first octet above 0x1f is the value's.
            .push(tagged(sa::TUNNEL_TYPE, 0, 3))
            .push(Attribute::text(sa::TUNNEL_SERVER_ENDPOINT, "192.0.2.14"));
        let a = authorization(&p).unwrap();
        let t = |tag,
                 server: [u8; 4],
                 assignment: Option<&str>,
                 preference,
                 ids: Option<(&str, &str)>| {
            TunnelAssignment {
                tag,
                server: Some(Ipv4Addr::from(server)),
                assignment: assignment.map(str::to_string),
                preference,
                client_auth_id: ids.map(|i| i.0.to_string()),
                server_auth_id: ids.map(|i| i.1.to_string()),
                password: None,
            }
        };
        assert_eq!(
            a.tunnels,
            vec![
                t(2, [192, 0, 2, 11], None, Some(10), Some(("lac-1", "lns-1"))),
                TunnelAssignment {
                    password: Some(b"isp-b secret".to_vec()),
                    ..t(1, [192, 0, 2, 12], Some("isp-b"), Some(20), None)
                },
                t(0, [192, 0, 2, 14], None, None, None),
            ]
        );
        // A tunnel integer of the wrong size is an error, as for every attribute.
        let mut bad = Packet::new(Code::AccessAccept, 1);
        bad.push(Attribute::octets(sa::TUNNEL_TYPE, vec![1, 0, 3]));
        assert!(authorization(&bad).is_err());
        // No tunnel attribute: none.
        assert!(
            authorization(&Packet::new(Code::AccessAccept, 1))
                .unwrap()
                .tunnels
                .is_empty()
        );
    }

    #[test]
    fn accept_attributes_are_read() {
        let mut p = Packet::new(Code::AccessAccept, 1);
        p.push(Attribute::ipv4(
            sa::FRAMED_IP_ADDRESS,
            Ipv4Addr::new(10, 10, 0, 50),
        ))
        .push(Attribute::u32(sa::SESSION_TIMEOUT, 3600))
        .push(Attribute::u32(sa::IDLE_TIMEOUT, 300))
        .push(Attribute::u32(sa::ACCT_INTERIM_INTERVAL, 60))
        .push(Attribute::octets(sa::CLASS, b"c1".to_vec()))
        .push(Attribute::octets(sa::CLASS, b"c2".to_vec()))
        .push(Attribute::u64(tg::VOLUME_LIMIT, 5 << 30))
        .push(Attribute::u64(tg::BANDWIDTH_UP, 10_000_000))
        .push(Attribute::u64(tg::BANDWIDTH_DOWN, 50_000_000))
        .push(Attribute::text(tg::ALLOWED_SERVICE, "web"))
        .push(Attribute::text(tg::ALLOWED_SERVICE, "mail"))
        .push(Attribute::u32(tg::MAX_LOGINS, 2))
        .push(Attribute::u32(tg::LOGIN_VICTIM, 1))
        .push(Attribute::u32(tg::RATE_RATIO, 60))
        .push(Attribute::u32(tg::RATE_WINDOW, 10))
        .push(Attribute::u32(tg::APP_TIMEOUT, 120))
        .push(Attribute::u32(AttrKey::Std(99), 1)); // ignored
        let a = authorization(&p).unwrap();
        assert_eq!(a.framed_ip, Some(Ipv4Addr::new(10, 10, 0, 50)));
        assert_eq!(a.conditions.session_time_s, Some(3600));
        assert_eq!(a.conditions.idle_time_s, Some(300));
        assert_eq!(a.interim_interval_s, Some(60));
        assert_eq!(a.class, vec![b"c1".to_vec(), b"c2".to_vec()]);
        assert_eq!(a.conditions.volume_bytes, Some(5 << 30));
        assert_eq!(
            (a.bandwidth_up, a.bandwidth_down),
            (Some(10_000_000), Some(50_000_000))
        );
        assert_eq!(a.services, vec!["web", "mail"]);
        assert_eq!(a.conditions.max_logins, Some(2));
        assert_eq!(a.conditions.login_victim, LoginVictim::Order);
        assert_eq!(a.conditions.rate_ratio_percent, Some(60));
        assert_eq!(a.conditions.app_timeout_s, Some(120));
    }

    #[test]
    fn ppp_requests_and_records_carry_chap_and_the_line() {
        let nas = NasIdentity {
            identifier: "tg1".into(),
            ip: None,
        };
        let p = chap_access_request(
            &nas,
            "alice",
            (7, b"0123456789abcdef", &[0xaa; 16]),
            Some("02:00:00:00:00:42"),
        );
        let pw = &p.get(sa::CHAP_PASSWORD).unwrap().value;
        assert_eq!(pw.len(), 17);
        assert_eq!(pw[0], 7);
        assert_eq!(&pw[1..], &[0xaa; 16]);
        assert_eq!(
            p.get(sa::CHAP_CHALLENGE).unwrap().value,
            b"0123456789abcdef".to_vec()
        );
        assert!(p.get(sa::USER_PASSWORD).is_none());
        let line = PppoeLine {
            nas_port_id: "access0.100.7".into(),
            circuit_id: Some(b"an1 eth 1/1/1:100".to_vec()),
            remote_id: Some(b"cust42".to_vec()),
            ipoe: false,
        };
        // An IPoE line: the same but Framed-Protocol.
        let mut ipoe = p.clone();
        PppoeLine {
            ipoe: true,
            ..line.clone()
        }
        .push(&mut ipoe);
        assert!(ipoe.get(sa::FRAMED_PROTOCOL).is_none());
        assert_eq!(
            ipoe.get(sa::NAS_PORT_ID).unwrap().as_text(),
            Ok("access0.100.7")
        );
        let mut p = p;
        line.push(&mut p);
        assert_eq!(
            p.attributes
                .iter()
                .filter(|a| a.key == sa::SERVICE_TYPE)
                .count(),
            1,
            "one Service-Type"
        );
        assert_eq!(p.get(sa::FRAMED_PROTOCOL).unwrap().as_u32(), Ok(1));
        assert_eq!(p.get(sa::NAS_PORT_TYPE).unwrap().as_u32(), Ok(15));
        assert_eq!(
            p.get(sa::NAS_PORT_ID).unwrap().as_text(),
            Ok("access0.100.7")
        );
        // RFC 4679 vendor 3561: in a Vendor-Specific attribute on the wire.
        let bytes = p.encode().unwrap();
        let back = Packet::decode(&bytes).unwrap();
        assert_eq!(
            back.get(sa::AGENT_CIRCUIT_ID).unwrap().value,
            b"an1 eth 1/1/1:100".to_vec()
        );
        assert_eq!(
            back.get(sa::AGENT_REMOTE_ID).unwrap().value,
            b"cust42".to_vec()
        );
        // Accounting of a PPP session, and the spool's JSON of it.
        let r = AcctRecord {
            status: AcctStatusType::Start,
            session_id: "s1".into(),
            user_name: "alice".into(),
            framed_ip: Some(Ipv4Addr::new(100, 64, 0, 1)),
            calling_station_id: Some("02:00:00:00:00:42".into()),
            class: Vec::new(),
            counters: Counters::default(),
            session_time_s: 0,
            cause: None,
            event_time: 1_700_000_000,
            access: Some(line.clone()),
            ipv6: None,
            tunnel: None,
        };
        let a = r.to_request(&nas, 1_700_000_000);
        assert_eq!(a.get(sa::SERVICE_TYPE).unwrap().as_u32(), Ok(2));
        assert_eq!(a.get(sa::FRAMED_PROTOCOL).unwrap().as_u32(), Ok(1));
        assert_eq!(a.get(sa::NAS_PORT_TYPE).unwrap().as_u32(), Ok(15));
        assert_eq!(
            a.get(sa::NAS_PORT_ID).unwrap().as_text(),
            Ok("access0.100.7")
        );
        let json = serde_json::to_string(&r).unwrap();
        let back: AcctRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        // An IPoE record has none of it, and older spool lines read back.
        let ipoe = AcctRecord { access: None, ..r };
        let json = serde_json::to_string(&ipoe).unwrap();
        assert!(!json.contains("access"));
        let a = ipoe.to_request(&nas, 1_700_000_000);
        assert!(a.get(sa::FRAMED_PROTOCOL).is_none());
        assert!(a.get(sa::NAS_PORT_ID).is_none());
        // Framed-MTU in an Access-Accept.
        let mut acc = Packet::new(Code::AccessAccept, 1);
        acc.push(Attribute::u32(sa::FRAMED_MTU, 1400));
        assert_eq!(authorization(&acc).unwrap().framed_mtu, Some(1400));
    }

    #[test]
    fn a_misshapen_known_attribute_is_an_error() {
        let mut p = Packet::new(Code::AccessAccept, 1);
        p.push(Attribute::octets(sa::SESSION_TIMEOUT, vec![1, 2]));
        assert!(matches!(authorization(&p), Err(ValueError::Length { .. })));
        let mut p = Packet::new(Code::AccessAccept, 1);
        p.push(Attribute::u32(tg::VOLUME_LIMIT, 5)); // integer64 needs 8 octets
        assert!(authorization(&p).is_err());
    }

    #[test]
    fn stop_record_carries_gigawords_and_cause() {
        let r = AcctRecord {
            status: AcctStatusType::Stop,
            session_id: "s1".into(),
            user_name: "alice".into(),
            framed_ip: Some(Ipv4Addr::new(10, 10, 0, 7)),
            calling_station_id: Some("02:00:00:00:00:07".into()),
            class: vec![b"k".to_vec()],
            counters: Counters {
                octets_up: 5 * (1 << 32) + 17,
                octets_down: 3,
                packets_up: 9,
                packets_down: 4,
            },
            session_time_s: 61,
            cause: Some(DisconnectCause::IdleTime),
            event_time: 1_700_000_000,
            access: None,
            ipv6: None,
            tunnel: None,
        };
        let nas = NasIdentity {
            identifier: "tg1".into(),
            ip: Some(Ipv4Addr::new(192, 0, 2, 1)),
        };
        let p = r.to_request(&nas, 1_700_000_005);
        assert_eq!(octets(&p).unwrap(), (5 * (1 << 32) + 17, 3));
        assert_eq!(p.get(sa::ACCT_DELAY_TIME).unwrap().as_u32(), Ok(5));
        assert_eq!(p.get(sa::ACCT_TERMINATE_CAUSE).unwrap().as_u32(), Ok(4));
        assert_eq!(p.get(tg::DISCONNECT_CAUSE).unwrap().as_u32(), Ok(2));
        assert_eq!(p.get(sa::CLASS).unwrap().value, b"k");
        assert_eq!(p.get(sa::NAS_IDENTIFIER).unwrap().as_text(), Ok("tg1"));
        assert_eq!(p.get(sa::ACCT_SESSION_TIME).unwrap().as_u32(), Ok(61));
        let start = AcctRecord {
            status: AcctStatusType::Start,
            ..r
        };
        let p = start.to_request(&nas, 1_700_000_000);
        assert!(p.get(sa::ACCT_INPUT_OCTETS).is_none());
        assert!(p.get(sa::ACCT_TERMINATE_CAUSE).is_none());
        assert!(p.encode().is_ok());
    }

    fn big(status: AcctStatusType, class: usize, user: usize) -> AcctRecord {
        AcctRecord {
            status,
            session_id: "18bcfe56800-1".into(),
            user_name: "u".repeat(user),
            framed_ip: Some(Ipv4Addr::new(10, 10, 0, 20)),
            calling_station_id: Some("c".repeat(300)),
            class: (0..class).map(|i| vec![i as u8; 250]).collect(),
            counters: Counters::default(),
            session_time_s: 5,
            cause: (status == AcctStatusType::Stop).then_some(DisconnectCause::Admin),
            event_time: 1_700_000_000,
            access: None,
            ipv6: None,
            tunnel: None,
        }
    }

    #[test]
    fn a_record_always_fits_in_one_packet_with_what_fits() {
        let nas = NasIdentity {
            identifier: "n".repeat(253),
            ip: Some(Ipv4Addr::new(192, 0, 2, 1)),
        };
        for status in [
            AcctStatusType::Start,
            AcctStatusType::InterimUpdate,
            AcctStatusType::Stop,
        ] {
            // 16 Class attributes of 250 octets: a legal Access-Accept, 4032 octets of
            // Class alone.
            let r = big(status, 16, 300);
            let (p, left) = r.to_request_fitted(&nas, 1_700_000_010);
            let bytes = crate::radius::crypto::sign_request(&p, b"secret").unwrap();
            assert!(bytes.len() <= MAX_PACKET_LEN, "{status:?}: {}", bytes.len());
            let kept = p.all(sa::CLASS).count();
            assert_eq!(kept + left.class, 16);
            assert_eq!(left.class_octets, left.class * 250);
            // As many as fit: one more would not.
            assert!(
                bytes.len() + 252 > MAX_PACKET_LEN,
                "{status:?}: room was left"
            );
            // Kept in order, from the first.
            let got: Vec<u8> = p.all(sa::CLASS).map(|a| a.value[0]).collect();
            assert_eq!(got, (0..kept as u8).collect::<Vec<_>>());
            assert_eq!(p.get(sa::USER_NAME).unwrap().value.len(), 253);
            assert!(p.get(sa::CALLING_STATION_ID).is_none());
            assert_eq!((left.cut, left.attributes), (1, 1));
            assert_eq!(Packet::decode(&bytes).unwrap().all(sa::CLASS).count(), kept);
        }
        // A record that fits is sent whole.
        let small = big(AcctStatusType::Stop, 3, 5);
        let (p, left) = small.to_request_fitted(&nas, 0);
        assert_eq!(p.all(sa::CLASS).count(), 3);
        assert_eq!((left.class, left.cut), (0, 0));
        assert_eq!(left.attributes, 1, "the 300-octet Calling-Station-Id");
    }
}
