//! DHCPv4 on the access side (RFC 2131, RFC 2132), sans-I/O: the IPoE login of issue 16
//! (SPEC ACC-3).
//!
//! - [`Server`]: the gateway is the subscribers' DHCP server. A DISCOVER becomes a
//!   [`Event::Login`] (keyed by line and MAC; the user name from the MAC or from option
//!   82's circuit-id or remote-id, by [`LoginBy`]); the caller answers with
//!   [`Server::accept`] (a [`Grant`]: address, mask, router, DNS, lease time) or
//!   [`Server::reject`]; the engine sends OFFER, then ACK/NAK to the REQUEST, and reports
//!   the session's start, renewals and end (RELEASE, DECLINE, expiry, or the caller's
//!   [`Server::end_session`], after which renewals get NAK).
//! - [`Relay`]: the gateway relays to external DHCP servers (RFC 3046: option 82 and
//!   `giaddr` added) and follows the exchange: the session starts on the server's ACK
//!   and ends on RELEASE, DECLINE, NAK or expiry.
//! - [`wire`]: the message view, options, option 82, the message builder.
//! - [`lease`]: [`Lease`] and its persisted byte form ([`Lease::encode`]), so leases and their
//!   sessions survive a restart of the gateway.
//!
//! The caller hands in DHCP messages with the line and the addresses they came with
//! ([`Received`], or a whole IPv4 datagram with [`Server::handle_datagram`]), the time,
//! and the AAA decisions; it drains [`Transmit`]s (whole IPv4/UDP datagrams for the
//! access line or the servers) and [`Event`]s. Every dropped message is counted by name.
//! See docs/ipoe.md.

pub mod lease;
pub mod relay;
pub mod server;
pub mod wire;

use core::net::Ipv4Addr;
use core::time::Duration;

use crate::inet::{ipv4, udp};
use crate::ipoe::{self, Subscriber};
use crate::pppoe::{Line, LineId};
use crate::wire::WireError;
use crate::wire::ethernet::{Mac, ethertype};

pub use lease::Lease;
pub use relay::{ExistingRelayInfo, Relay, RelayConfig};
pub use server::{RestoreError, Restored, Server, ServerConfig};

/// A DHCP message as the caller received it: the UDP payload and where it came from.
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    /// The line it came on.
    pub line: Line,
    /// The Ethernet source (the client's MAC, or a relay's).
    pub src_mac: Mac,
    /// The IPv4 source (0.0.0.0 before the client has an address).
    pub src_ip: Ipv4Addr,
    /// The IPv4 destination (255.255.255.255, or ours for unicast renewals).
    pub dst_ip: Ipv4Addr,
    /// The DHCP message (the UDP payload).
    pub message: &'a [u8],
}

/// Reads a punted IPv4 datagram for a DHCP engine: IPv4 with a good header checksum, not a
/// fragment, UDP with a good checksum to `port`. Returns the message's facts.
pub fn parse_datagram(
    line: Line,
    src_mac: Mac,
    datagram: &[u8],
    port: u16,
) -> Result<Received<'_>, DropReason> {
    let ip = ipv4::Packet::new_checked(datagram).map_err(|_| DropReason::BadIp)?;
    if !ip.checksum_ok() {
        return Err(DropReason::BadIp);
    }
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    if ip.protocol() != ipv4::protocol::UDP {
        return Err(DropReason::NotDhcp);
    }
    let (src_ip, dst_ip) = (ip.src_addr(), ip.dst_addr());
    let payload = &datagram[ip.header_len()..ip.total_len() as usize];
    let u = udp::Datagram::new_checked(payload).map_err(|_| DropReason::BadUdp)?;
    if u.dst_port() != port {
        return Err(DropReason::NotDhcp);
    }
    if !u.checksum_ok_v4(src_ip, dst_ip) {
        return Err(DropReason::BadChecksum);
    }
    let len = u.len() as usize;
    Ok(Received {
        line,
        src_mac,
        src_ip,
        dst_ip,
        message: &payload[udp::HEADER_LEN..len],
    })
}

/// Where a transmit goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Out on an access line, in an Ethernet frame to `mac` (the client, or the relay
    /// agent the request came through), tagged with the line's VLANs.
    Access {
        /// The line.
        line: Line,
        /// The Ethernet destination.
        mac: Mac,
    },
    /// To a DHCP server (relay mode): the caller routes the datagram (or sends
    /// `message` from a UDP socket bound to `src`:67 to `dst`:67).
    Server,
}

/// A DHCP message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub to: Destination,
    /// The IPv4 source.
    pub src: Ipv4Addr,
    /// The IPv4 destination.
    pub dst: Ipv4Addr,
    /// The UDP source port.
    pub src_port: u16,
    /// The UDP destination port.
    pub dst_port: u16,
    /// The DHCP message.
    pub message: Vec<u8>,
}

impl Transmit {
    /// The IPv4 datagram (TTL 64, checksums filled).
    pub fn datagram(&self) -> Vec<u8> {
        udp::ipv4_datagram(
            self.src,
            self.dst,
            self.src_port,
            self.dst_port,
            64,
            &self.message,
        )
    }

    /// The Ethernet frame from `src_mac` for an access-side transmit (`outer_tpid` for
    /// the line's S-VLAN); `None` for one to a server.
    pub fn frame(&self, src_mac: Mac, outer_tpid: u16) -> Option<Vec<u8>> {
        match self.to {
            Destination::Access { line, mac } => Some(ipoe::frame(
                line,
                mac,
                src_mac,
                outer_tpid,
                ethertype::IPV4,
                &self.datagram(),
            )),
            Destination::Server => None,
        }
    }
}

/// The handle of one login, from DISCOVER to the session's end: the caller answers the
/// [`Event::Login`] with it and may key its session by it (leases keep it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoginId(pub u64);

/// What names the subscriber to AAA (the User-Name of an IPoE login).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LoginBy {
    /// The client MAC, written `02:00:5e:00:00:01`.
    #[default]
    Mac,
    /// Option 82's Agent Circuit ID (a DISCOVER without it is refused).
    CircuitId,
    /// Option 82's Agent Remote ID (a DISCOVER without it is refused).
    RemoteId,
}

/// What the caller grants a subscriber it logged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The subscriber's address (Framed-IP-Address, or from Framed-Pool / a local pool).
    pub address: Ipv4Addr,
    /// The subnet mask of the access network.
    pub mask: Ipv4Addr,
    /// The default router (`None`: the server's own address, the gateway).
    pub router: Option<Ipv4Addr>,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// The lease time (whole seconds, at least 60 s; renewals at half, rebinding at 7/8).
    pub lease_time: Duration,
    /// The domain name (option 15), if any.
    pub domain_name: Option<Vec<u8>>,
    /// The interface MTU (option 26), if any.
    pub mtu: Option<u16>,
}

impl Grant {
    /// `address` in `mask`, with no DNS, a one-hour lease, the gateway as router.
    pub fn new(address: Ipv4Addr, mask: Ipv4Addr) -> Grant {
        Grant {
            address,
            mask,
            router: None,
            dns: Vec::new(),
            lease_time: Duration::from_secs(3600),
            domain_name: None,
            mtu: None,
        }
    }

    /// The lease time in seconds as it goes on the wire (60 s at least).
    pub fn lease_secs(&self) -> u32 {
        self.lease_time.as_secs().clamp(60, u64::from(u32::MAX - 1)) as u32
    }
}

/// A login to decide (the Access-Request of an IPoE subscriber).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// Answer with this.
    pub id: LoginId,
    /// The line and MAC.
    pub subscriber: Subscriber,
    /// The User-Name, by [`LoginBy`].
    pub user: Vec<u8>,
    /// Option 82 as received (circuit-id, remote-id, TR-101 rates), if any.
    pub line_id: Option<LineId>,
    /// Client-identifier (option 61).
    pub client_id: Option<Vec<u8>>,
    /// Host Name (option 12).
    pub host_name: Option<Vec<u8>>,
    /// Vendor class identifier (option 60).
    pub vendor_class: Option<Vec<u8>>,
    /// The address the client asked for (option 50), a hint for the pool.
    pub requested_ip: Option<Ipv4Addr>,
    /// The relay agent's address (`giaddr`), if the DISCOVER came through one.
    pub relay: Option<Ipv4Addr>,
}

/// Why a login ended without a session (the caller returns the address, if any, to its
/// pool and forgets the login).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cancel {
    /// The caller did not decide within the decision timeout.
    DecisionTimeout,
    /// The client did not REQUEST the offered address in time.
    OfferExpired,
    /// The client's REQUEST chose another server.
    OtherServer,
    /// The client's REQUEST asked for another address than offered (NAK sent).
    RequestMismatch,
}

impl Cancel {
    /// The name records and `ctl` show.
    pub fn name(self) -> &'static str {
        match self {
            Cancel::DecisionTimeout => "decision_timeout",
            Cancel::OfferExpired => "offer_expired",
            Cancel::OtherServer => "other_server",
            Cancel::RequestMismatch => "request_mismatch",
        }
    }
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EndCause {
    /// DHCPRELEASE from the client.
    Release,
    /// DHCPDECLINE: the client found the address in use (the caller should hold it back
    /// from its pool for a while).
    Decline,
    /// The lease ran out without a renewal.
    Expired,
    /// The caller ended it ([`Server::end_session`], [`Relay::end_session`]: DISC
    /// condition, CoA Disconnect, `ctl`), with its reason; renewals now get NAK.
    Closed(String),
    /// Relay mode: the server answered a renewal with NAK.
    Nak,
    /// Relay mode: the server gave the subscriber another address (a new session
    /// follows).
    Replaced,
}

impl EndCause {
    /// The name records and `ctl` show.
    pub fn name(&self) -> &'static str {
        match self {
            EndCause::Release => "release",
            EndCause::Decline => "decline",
            EndCause::Expired => "lease_expired",
            EndCause::Closed(_) => "closed",
            EndCause::Nak => "nak",
            EndCause::Replaced => "replaced",
        }
    }
}

/// What happened, for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A DISCOVER from a subscriber without a session: ask AAA, answer with
    /// [`Server::accept`] or [`Server::reject`] (server mode only).
    Login(Login),
    /// A login ended without a session; `address` is the granted address, if one was.
    LoginCancelled {
        /// The login.
        id: LoginId,
        /// The subscriber.
        subscriber: Subscriber,
        /// The address offered, if any.
        address: Option<Ipv4Addr>,
        /// Why.
        why: Cancel,
    },
    /// ACK sent for a new lease: install the session in the fast path (address, MAC,
    /// line), start accounting, persist the lease.
    SessionStarted(Lease),
    /// ACK sent for a renewal (or a client's reboot): persist the new expiry.
    LeaseRenewed(Lease),
    /// The session ended: remove it from the fast path, stop accounting with the cause,
    /// forget the persisted lease.
    SessionEnded {
        /// The lease as it was.
        lease: Lease,
        /// Why.
        cause: EndCause,
    },
}

/// The caller's decision came too late or for nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// No login with this id waits for a decision (decided, timed out, or unknown).
    #[error("no login is waiting for a decision with this id")]
    NotPending,
    /// The granted address is offered to or leased by another subscriber.
    #[error("the address is held by another subscriber")]
    AddressInUse,
}

/// Why a DHCP message was dropped (counted by name; never answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Not a well-formed IPv4 datagram (header, length, checksum).
    BadIp,
    /// An IPv4 fragment (DHCP messages are never fragmented here).
    Fragment,
    /// Not UDP to the DHCP port.
    NotDhcp,
    /// A UDP header that does not parse.
    BadUdp,
    /// A wrong UDP checksum.
    BadChecksum,
    /// Shorter than the fixed fields and the magic cookie.
    Truncated,
    /// No DHCP magic cookie (plain BOOTP or garbage).
    BadCookie,
    /// An option runs past its area, or a fixed-size option has the wrong size.
    BadOption,
    /// A server's message (`op` 2) on the client side, or a client's on the server side
    /// (relay).
    WrongOp,
    /// Not Ethernet (`htype` 1, `hlen` 6).
    BadHardware,
    /// No DHCP Message Type option.
    NoMessageType,
    /// A message type this side does not receive.
    UnexpectedType,
    /// A broadcast/multicast source MAC, or `chaddr` not the source MAC of a client on
    /// the line (no relay in between): a client may not log another MAC in.
    ChaddrMismatch,
    /// More relay hops than allowed.
    TooManyHops,
    /// Addressed to another DHCP server (Server Identifier).
    OtherServer,
    /// A REQUEST or DECLINE without the fields its state needs (Requested IP Address).
    MissingField,
    /// RELEASE, DECLINE or INFORM for no lease of this client.
    UnknownLease,
    /// A retransmission while the caller is deciding the login.
    DecisionPending,
    /// A REQUEST from a client we have no record of, and the server is not
    /// authoritative.
    UnknownClient,
    /// Relay mode: a server's reply for no client we relayed for.
    UnknownTransaction,
    /// Relay mode: a server's reply from an address that is not a configured server.
    UnknownServer,
    /// Relay mode: a client message that already went through a relay agent (`giaddr`
    /// set); the relay serves the clients on its own lines.
    Relayed,
    /// Relay mode: option 82 from the access side while the config says to drop it.
    UntrustedRelayInfo,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 23;

    /// All reasons, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::BadIp,
        DropReason::Fragment,
        DropReason::NotDhcp,
        DropReason::BadUdp,
        DropReason::BadChecksum,
        DropReason::Truncated,
        DropReason::BadCookie,
        DropReason::BadOption,
        DropReason::WrongOp,
        DropReason::BadHardware,
        DropReason::NoMessageType,
        DropReason::UnexpectedType,
        DropReason::ChaddrMismatch,
        DropReason::TooManyHops,
        DropReason::OtherServer,
        DropReason::MissingField,
        DropReason::UnknownLease,
        DropReason::DecisionPending,
        DropReason::UnknownClient,
        DropReason::UnknownTransaction,
        DropReason::UnknownServer,
        DropReason::Relayed,
        DropReason::UntrustedRelayInfo,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::BadIp => "dhcp_bad_ip",
            DropReason::Fragment => "dhcp_fragment",
            DropReason::NotDhcp => "dhcp_not_dhcp",
            DropReason::BadUdp => "dhcp_bad_udp",
            DropReason::BadChecksum => "dhcp_bad_checksum",
            DropReason::Truncated => "dhcp_truncated",
            DropReason::BadCookie => "dhcp_bad_cookie",
            DropReason::BadOption => "dhcp_bad_option",
            DropReason::WrongOp => "dhcp_wrong_op",
            DropReason::BadHardware => "dhcp_bad_hardware",
            DropReason::NoMessageType => "dhcp_no_message_type",
            DropReason::UnexpectedType => "dhcp_unexpected_type",
            DropReason::ChaddrMismatch => "dhcp_chaddr_mismatch",
            DropReason::TooManyHops => "dhcp_too_many_hops",
            DropReason::OtherServer => "dhcp_other_server",
            DropReason::MissingField => "dhcp_missing_field",
            DropReason::UnknownLease => "dhcp_unknown_lease",
            DropReason::DecisionPending => "dhcp_decision_pending",
            DropReason::UnknownClient => "dhcp_unknown_client",
            DropReason::UnknownTransaction => "dhcp_unknown_transaction",
            DropReason::UnknownServer => "dhcp_unknown_server",
            DropReason::Relayed => "dhcp_relayed",
            DropReason::UntrustedRelayInfo => "dhcp_untrusted_relay_info",
        }
    }
}

/// Why a well-formed DISCOVER got no OFFER by policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Refusal {
    /// Over the per-MAC DISCOVER rate.
    DiscoverRateMac,
    /// Over the global DISCOVER rate.
    DiscoverRate,
    /// The engine holds its maximum of logins and leases.
    LeaseLimit,
    /// [`LoginBy`] names an option-82 sub-option the DISCOVER does not carry.
    NoLineId,
    /// The caller rejected the login.
    Rejected,
    /// A DISCOVER within `refusal_hold` of a rejection (AAA is not asked again).
    RecentlyRejected,
}

impl Refusal {
    /// Number of reasons.
    pub const COUNT: usize = 6;

    /// All reasons, in counter order.
    pub const ALL: [Refusal; Refusal::COUNT] = [
        Refusal::DiscoverRateMac,
        Refusal::DiscoverRate,
        Refusal::LeaseLimit,
        Refusal::NoLineId,
        Refusal::Rejected,
        Refusal::RecentlyRejected,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::DiscoverRateMac => "dhcp_discover_rate_mac",
            Refusal::DiscoverRate => "dhcp_discover_rate",
            Refusal::LeaseLimit => "dhcp_lease_limit",
            Refusal::NoLineId => "dhcp_no_line_id",
            Refusal::Rejected => "dhcp_rejected",
            Refusal::RecentlyRejected => "dhcp_recently_rejected",
        }
    }
}

/// Message counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// DISCOVERs received (well-formed).
    pub discover: u64,
    /// OFFERs sent.
    pub offer: u64,
    /// REQUESTs received.
    pub request: u64,
    /// ACKs sent (or relayed).
    pub ack: u64,
    /// NAKs sent (or relayed).
    pub nak: u64,
    /// RELEASEs received for a lease.
    pub release: u64,
    /// DECLINEs received for a lease.
    pub decline: u64,
    /// INFORMs answered.
    pub inform: u64,
    /// Leases that expired.
    pub expired: u64,
    /// Logins asked of the caller.
    pub logins: u64,
    /// Messages relayed to servers.
    pub relayed_to_server: u64,
    /// Replies relayed to clients.
    pub relayed_to_client: u64,
    /// Option 82 values that did not parse (the login goes on without line id).
    pub line_id_malformed: u64,
    /// DISCOVERs whose MAC was not rate-tracked because the table was full.
    pub rate_untracked: u64,
}

/// The drop and refusal counters of an engine.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) drops: [u64; DropReason::COUNT],
    pub(crate) refusals: [u64; Refusal::COUNT],
    pub(crate) stats: Stats,
}

impl Counters {
    pub(crate) fn drop(&mut self, d: DropReason) {
        self.drops[d as usize] += 1;
    }

    pub(crate) fn refuse(&mut self, r: Refusal) {
        self.refusals[r as usize] += 1;
    }
}

/// Reads the message and the fields every message must have: well-formed, Ethernet,
/// `op` as expected, a message type.
pub(crate) fn check_message<'a>(
    p: &'a wire::Packet<&'a [u8]>,
    op: u8,
) -> Result<(wire::Request<'a>, u8), DropReason> {
    if p.op() != op {
        return Err(DropReason::WrongOp);
    }
    if !p.is_ethernet() {
        return Err(DropReason::BadHardware);
    }
    let r = wire::Request::parse(p).map_err(|_| DropReason::BadOption)?;
    let t = r.message_type.ok_or(DropReason::NoMessageType)?;
    Ok((r, t))
}

pub(crate) fn view(message: &[u8]) -> Result<wire::Packet<&[u8]>, DropReason> {
    wire::Packet::new_checked(message).map_err(|e| match e {
        WireError::Truncated => DropReason::Truncated,
        WireError::Malformed => DropReason::BadCookie,
    })
}
