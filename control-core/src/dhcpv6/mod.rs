//! DHCPv6 on the access side (RFC 8415), sans-I/O: the IPv6 half of the IPoE login of
//! issue 16 (SPEC V6-1).
//!
//! [`Server`] answers SOLICIT (ADVERTISE, or REPLY with Rapid Commit), REQUEST, RENEW,
//! REBIND, RELEASE, DECLINE, CONFIRM and INFORMATION-REQUEST, with IA_NA (an address)
//! and IA_PD (a delegated prefix) from the caller's decision and the DNS servers option
//! (RFC 3646). A subscriber is its line and MAC, as for DHCPv4: the Ethernet source of a
//! direct client, or the client link-layer address option (RFC 6939) a lightweight
//! relay agent (RFC 6221) adds; the DUID ties later messages to the binding. The server's
//! DUID is a DUID-LL of the gateway's MAC.
//!
//! Like [`crate::dhcp::Server`]: a SOLICIT from a subscriber without a binding becomes
//! [`Event::Login`]; the caller answers with [`Server::accept`] ([`Grant`]) or
//! [`Server::reject`]; sessions start at the REPLY to REQUEST (or the Rapid Commit
//! REPLY), renew, and end on RELEASE, DECLINE, expiry (the valid lifetime) or
//! [`Server::end_session`], after which RENEW/REBIND get the addresses back with zero
//! lifetimes. Leases persist with [`Lease::encode`]. See docs/ipoe.md.

pub mod relay;
pub mod server;
pub mod wire;

use core::net::Ipv6Addr;
use core::time::Duration;

use crate::codec::{Reader, Writer};
use crate::dhcp::lease::{from_unix, get_line, put_line, to_unix};
use crate::dhcp::{Cancel, EndCause, LoginId};
use crate::inet::ipv6::Prefix;
use crate::inet::udp;
use crate::ipoe::{self, Subscriber};
use crate::pppoe::Line;
use crate::time::Instant;
use crate::wire::WireError;
use crate::wire::ethernet::{Mac, ethertype};

pub use relay::{BindingServer, Relay, RelayConfig, ToServer};
pub use server::{Server, ServerConfig};

/// A DHCPv6 message as the caller received it.
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    /// The line it came on.
    pub line: Line,
    /// The Ethernet source.
    pub src_mac: Mac,
    /// The IPv6 source (the client's link-local address, or a relay agent's).
    pub src_ip: Ipv6Addr,
    /// The IPv6 destination (ff02::1:2, or ours).
    pub dst_ip: Ipv6Addr,
    /// The DHCPv6 message (the UDP payload).
    pub message: &'a [u8],
}

/// A DHCPv6 message to send on an access line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The line.
    pub line: Line,
    /// The Ethernet destination (the client, or the relay agent).
    pub dst_mac: Mac,
    /// The IPv6 source (the gateway's link-local address).
    pub src: Ipv6Addr,
    /// The IPv6 destination.
    pub dst: Ipv6Addr,
    /// The UDP destination port (546 to a client, 547 to a relay agent).
    pub dst_port: u16,
    /// The DHCPv6 message.
    pub message: Vec<u8>,
}

impl Transmit {
    /// The IPv6 packet (UDP from port 547, hop limit 255 as on-link traffic).
    pub fn packet(&self) -> Vec<u8> {
        udp::ipv6_datagram(
            self.src,
            self.dst,
            wire::SERVER_PORT,
            self.dst_port,
            255,
            &self.message,
        )
    }

    /// The Ethernet frame from `src_mac` (`outer_tpid` for the line's S-VLAN).
    pub fn frame(&self, src_mac: Mac, outer_tpid: u16) -> Vec<u8> {
        ipoe::frame(
            self.line,
            self.dst_mac,
            src_mac,
            outer_tpid,
            ethertype::IPV6,
            &self.packet(),
        )
    }
}

/// What the caller grants a subscriber's DHCPv6 client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The IA_NA address (Framed-IPv6-Address or a pool), if any.
    pub address: Option<Ipv6Addr>,
    /// The IA_PD prefix (Delegated-IPv6-Prefix or a pool), if any.
    pub prefix: Option<Prefix>,
    /// DNS servers (RFC 3646).
    pub dns: Vec<Ipv6Addr>,
    /// Preferred lifetime (T1 is half of it, T2 four fifths, RFC 8415 21.4).
    pub preferred: Duration,
    /// Valid lifetime: the binding expires this long after the last REPLY.
    pub valid: Duration,
}

impl Grant {
    /// A grant with lifetimes of one hour preferred, two valid, and no DNS.
    pub fn new(address: Option<Ipv6Addr>, prefix: Option<Prefix>) -> Grant {
        Grant {
            address,
            prefix,
            dns: Vec::new(),
            preferred: Duration::from_secs(3600),
            valid: Duration::from_secs(7200),
        }
    }

    /// The preferred lifetime on the wire (seconds, at most the valid one).
    pub fn preferred_secs(&self) -> u32 {
        self.preferred
            .as_secs()
            .min(self.valid.as_secs())
            .min(u64::from(u32::MAX - 1)) as u32
    }

    /// The valid lifetime on the wire (seconds, 60 at least).
    pub fn valid_secs(&self) -> u32 {
        self.valid.as_secs().clamp(60, u64::from(u32::MAX - 1)) as u32
    }
}

/// A DHCPv6 login to decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// Answer with this.
    pub id: LoginId,
    /// The line and MAC (the session key, shared with DHCPv4).
    pub subscriber: Subscriber,
    /// The User-Name: the MAC written `02:00:5e:00:00:01`.
    pub user: Vec<u8>,
    /// The client's DUID.
    pub duid: Vec<u8>,
    /// The client asked for an address (IA_NA).
    pub wants_address: bool,
    /// The client asked for a prefix (IA_PD).
    pub wants_prefix: bool,
    /// The prefix length the client hinted at, if any.
    pub prefix_len_hint: Option<u8>,
    /// The relay agent's Interface-Id (RFC 6221), if relayed.
    pub interface_id: Option<Vec<u8>>,
    /// The relay agent's Remote-ID (RFC 4649), if any.
    pub remote_id: Option<Vec<u8>>,
}

/// A binding: what a subscriber's DHCPv6 client holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The login.
    pub id: LoginId,
    /// The line and MAC.
    pub subscriber: Subscriber,
    /// The client's DUID.
    pub duid: Vec<u8>,
    /// What was granted.
    pub grant: Grant,
    /// The IA_NA's IAID, when an address is bound.
    pub iaid_na: Option<u32>,
    /// The IA_PD's IAID, when a prefix is delegated.
    pub iaid_pd: Option<u32>,
    /// When the first REPLY went out.
    pub started: Instant,
    /// When the binding runs out unless renewed.
    pub expires: Instant,
}

const KIND: u8 = 0x66;
const VERSION: u8 = 1;

impl Lease {
    /// The persisted form, times as Unix seconds (`now` is `unix_now`).
    pub fn encode(&self, now: Instant, unix_now: u64) -> Vec<u8> {
        let mut w = Writer::new(KIND, VERSION);
        w.u64(self.id.0);
        put_line(&mut w, self.subscriber.line);
        w.raw(&self.subscriber.mac);
        w.bytes(&self.duid);
        let g = &self.grant;
        w.opt_bytes(g.address.map(|a| a.octets()).as_ref().map(|a| &a[..]));
        match g.prefix {
            None => w.u8(0),
            Some(p) => w.u8(1).raw(&p.addr().octets()).u8(p.len()),
        };
        w.u8(g.dns.len().min(255) as u8);
        for d in g.dns.iter().take(255) {
            w.raw(&d.octets());
        }
        w.u32(g.preferred_secs()).u32(g.valid_secs());
        for iaid in [self.iaid_na, self.iaid_pd] {
            match iaid {
                None => w.u8(0),
                Some(v) => w.u8(1).u32(v),
            };
        }
        w.u64(to_unix(self.started, now, unix_now));
        w.u64(to_unix(self.expires, now, unix_now));
        w.finish()
    }

    /// Reads a persisted binding back onto the engine's clock.
    pub fn decode(b: &[u8], now: Instant, unix_now: u64) -> Result<Lease, WireError> {
        let mut r = Reader::new(b, KIND, VERSION)?;
        let id = LoginId(r.u64()?);
        let line = get_line(&mut r)?;
        let mac = r.array::<6>()?;
        let duid = r.bytes()?.to_vec();
        let address = match r.opt_bytes()? {
            None => None,
            Some(a) => Some(Ipv6Addr::from(
                <[u8; 16]>::try_from(a).map_err(|_| WireError::Malformed)?,
            )),
        };
        let prefix = if r.flag()? {
            let a = Ipv6Addr::from(r.array::<16>()?);
            Some(Prefix::new(a, r.u8()?).ok_or(WireError::Malformed)?)
        } else {
            None
        };
        let n = r.u8()?;
        let mut dns = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            dns.push(Ipv6Addr::from(r.array::<16>()?));
        }
        let preferred = Duration::from_secs(u64::from(r.u32()?));
        let valid = Duration::from_secs(u64::from(r.u32()?));
        let mut iaid = || -> Result<Option<u32>, WireError> {
            Ok(if r.flag()? { Some(r.u32()?) } else { None })
        };
        let iaid_na = iaid()?;
        let iaid_pd = iaid()?;
        let started = from_unix(r.u64()?, now, unix_now);
        let expires = from_unix(r.u64()?, now, unix_now);
        r.finish()?;
        Ok(Lease {
            id,
            subscriber: Subscriber { line, mac },
            duid,
            grant: Grant {
                address,
                prefix,
                dns,
                preferred,
                valid,
            },
            iaid_na,
            iaid_pd,
            started,
            expires,
        })
    }
}

/// What happened, for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A SOLICIT from a subscriber without a binding: answer with [`Server::accept`] or
    /// [`Server::reject`] (if the subscriber's session exists already through DHCPv4,
    /// the caller answers from it at once).
    Login(Login),
    /// A login ended without a binding (decision timeout, advertise not requested, the
    /// client chose another server): return the address and prefix to their pools.
    LoginCancelled {
        /// The login.
        id: LoginId,
        /// The subscriber.
        subscriber: Subscriber,
        /// What had been granted, if anything.
        grant: Option<Grant>,
        /// Why.
        why: Cancel,
    },
    /// REPLY sent for a new binding: add the address / prefix to the session (fast-path
    /// anti-spoofing, routes), persist the lease.
    SessionStarted(Lease),
    /// REPLY sent for a renewal: persist the new expiry.
    LeaseRenewed(Lease),
    /// The binding ended: remove its address and prefix from the session.
    SessionEnded {
        /// The binding as it was.
        lease: Lease,
        /// Why (Release, Decline, Expired or Closed).
        cause: EndCause,
    },
}

/// Why a DHCPv6 message was dropped (counted by name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Not a well-formed IPv6 packet, or its extension headers do not parse.
    BadIp,
    /// Not UDP to port 547.
    NotDhcp,
    /// A UDP header that does not parse.
    BadUdp,
    /// A wrong (or missing) UDP checksum.
    BadChecksum,
    /// Shorter than its header.
    Truncated,
    /// An option runs past the message, or a fixed-size option has the wrong size.
    BadOption,
    /// A message type a server does not receive.
    UnexpectedType,
    /// No Client Identifier.
    NoClientId,
    /// A Server Identifier where there may be none (SOLICIT, REBIND, CONFIRM) or none
    /// where there must be one (REQUEST, RENEW, RELEASE, DECLINE).
    ServerIdRule,
    /// Addressed to another server.
    OtherServer,
    /// A multicast source MAC, or a relayed message with no usable client MAC.
    NoClientMac,
    /// A retransmission while the caller is deciding the login.
    DecisionPending,
    /// CONFIRM, or a message needing a binding, from a client without one.
    UnknownClient,
    /// The DUID does not match the subscriber's binding.
    DuidMismatch,
    /// Relay messages nested deeper than one lightweight relay agent, or a RELAY-FORW
    /// without a Relay Message.
    BadRelay,
    /// INFORMATION-REQUEST with an IA.
    IaInInformationRequest,
    /// Relay mode: a datagram from an address that is not a configured server.
    UnknownServer,
    /// Relay mode: a RELAY-REPL for no transaction relayed (its inner transaction id
    /// and Peer-Address), or one that timed out.
    UnknownTransaction,
    /// Relay mode: a RELAY-REPL whose Interface-Id is not the client's line.
    InterfaceIdMismatch,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 19;

    /// All reasons, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::BadIp,
        DropReason::NotDhcp,
        DropReason::BadUdp,
        DropReason::BadChecksum,
        DropReason::Truncated,
        DropReason::BadOption,
        DropReason::UnexpectedType,
        DropReason::NoClientId,
        DropReason::ServerIdRule,
        DropReason::OtherServer,
        DropReason::NoClientMac,
        DropReason::DecisionPending,
        DropReason::UnknownClient,
        DropReason::DuidMismatch,
        DropReason::BadRelay,
        DropReason::IaInInformationRequest,
        DropReason::UnknownServer,
        DropReason::UnknownTransaction,
        DropReason::InterfaceIdMismatch,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::BadIp => "dhcpv6_bad_ip",
            DropReason::NotDhcp => "dhcpv6_not_dhcp",
            DropReason::BadUdp => "dhcpv6_bad_udp",
            DropReason::BadChecksum => "dhcpv6_bad_checksum",
            DropReason::Truncated => "dhcpv6_truncated",
            DropReason::BadOption => "dhcpv6_bad_option",
            DropReason::UnexpectedType => "dhcpv6_unexpected_type",
            DropReason::NoClientId => "dhcpv6_no_client_id",
            DropReason::ServerIdRule => "dhcpv6_server_id_rule",
            DropReason::OtherServer => "dhcpv6_other_server",
            DropReason::NoClientMac => "dhcpv6_no_client_mac",
            DropReason::DecisionPending => "dhcpv6_decision_pending",
            DropReason::UnknownClient => "dhcpv6_unknown_client",
            DropReason::DuidMismatch => "dhcpv6_duid_mismatch",
            DropReason::BadRelay => "dhcpv6_bad_relay",
            DropReason::IaInInformationRequest => "dhcpv6_ia_in_information_request",
            DropReason::UnknownServer => "dhcpv6_unknown_server",
            DropReason::UnknownTransaction => "dhcpv6_unknown_transaction",
            DropReason::InterfaceIdMismatch => "dhcpv6_interface_id_mismatch",
        }
    }
}

/// Why a well-formed SOLICIT got no binding by policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Refusal {
    /// Over the per-MAC SOLICIT rate.
    SolicitRateMac,
    /// Over the global SOLICIT rate.
    SolicitRate,
    /// The engine holds its maximum of subscribers.
    Limit,
    /// The caller rejected the login.
    Rejected,
    /// A SOLICIT within `refusal_hold` of a rejection.
    RecentlyRejected,
}

impl Refusal {
    /// Number of reasons.
    pub const COUNT: usize = 5;

    /// All reasons, in counter order.
    pub const ALL: [Refusal; Refusal::COUNT] = [
        Refusal::SolicitRateMac,
        Refusal::SolicitRate,
        Refusal::Limit,
        Refusal::Rejected,
        Refusal::RecentlyRejected,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::SolicitRateMac => "dhcpv6_solicit_rate_mac",
            Refusal::SolicitRate => "dhcpv6_solicit_rate",
            Refusal::Limit => "dhcpv6_limit",
            Refusal::Rejected => "dhcpv6_rejected",
            Refusal::RecentlyRejected => "dhcpv6_recently_rejected",
        }
    }
}

/// Message counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// SOLICITs received (well-formed).
    pub solicit: u64,
    /// ADVERTISEs sent.
    pub advertise: u64,
    /// REQUESTs received.
    pub request: u64,
    /// RENEWs received.
    pub renew: u64,
    /// REBINDs received.
    pub rebind: u64,
    /// REPLYs sent.
    pub reply: u64,
    /// RELEASEs received.
    pub release: u64,
    /// DECLINEs received.
    pub decline: u64,
    /// CONFIRMs received.
    pub confirm: u64,
    /// INFORMATION-REQUESTs answered.
    pub information_request: u64,
    /// Bindings that expired.
    pub expired: u64,
    /// Logins asked of the caller.
    pub logins: u64,
    /// Messages that came through a relay agent.
    pub relayed: u64,
    /// SOLICITs whose MAC was not rate-tracked because the table was full.
    pub rate_untracked: u64,
    /// Relay mode: RELAY-FORWs sent to servers.
    pub relayed_to_server: u64,
    /// Relay mode: servers' messages delivered to clients.
    pub relayed_to_client: u64,
}
