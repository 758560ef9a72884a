//! The PPP engine: one [`Session`] per PPP link (a PPPoE session, or an L2TP session at
//! the LNS), sans-I/O in the manner of `quinn-proto`.
//!
//! The caller feeds it the link's control frames ([`Session::handle_input`]), the time
//! ([`Session::handle_timeout`] at [`Session::poll_timeout`]) and the AAA decisions
//! ([`Session::accept`] / [`Session::reject`]); it drains what to send
//! ([`Session::poll_transmit`]: a PPP protocol number and the packet) and what happened
//! ([`Session::poll_event`]: link up, credentials to check, IPv4/IPv6 up and down, the
//! end with its cause). Random bytes come from the caller's [`crate::Entropy`].
//!
//! Modules: [`fsm`] (the RFC 1661 automaton), `cp` (one control protocol over it),
//! `lcp` and `ncp` (the options of LCP, IPCP and IPv6CP), [`auth`] (PAP/CHAP
//! authenticator), [`proxy`] (L2TP proxy LCP/authentication), [`wire`] (packet views),
//! and [`client`] (a minimal subscriber side for the traffic generator and tests).
//! See docs/ppp.md for how the shell drives it.

pub mod auth;
pub mod client;
mod cp;
pub mod fsm;
mod lcp;
mod ncp;
pub mod proxy;
mod session;
pub mod wire;

use core::net::Ipv4Addr;
use core::time::Duration;

pub use auth::{AuthRequest, AuthStatus, Credentials};
pub use client::{Client, ClientPhase};
pub use fsm::{Limits, State};
pub use lcp::{DEFAULT_MRU, MIN_MRU};
pub use ncp::InterfaceId;
pub use proxy::{ProxyAuth, ProxyAuthType, ProxyLcp, ProxyRecord};
pub use session::{DecisionError, ProxyLcpUse, Session, Summary};

/// An authentication protocol the gateway offers as authenticator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// PAP (RFC 1334).
    Pap,
    /// CHAP with MD5 (RFC 1994).
    Chap,
}

impl AuthMethod {
    /// The name `ctl` and the config use.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Pap => "pap",
            AuthMethod::Chap => "chap",
        }
    }
}

/// How sessions negotiate (shared by all sessions of an access port or tunnel).
#[derive(Clone, Debug)]
pub struct Config {
    /// The MRU we ask for (1492 on PPPoE, RFC 2516).
    pub mru: u16,
    /// The authentication methods offered, in preference order (a peer's Nak picks
    /// another one of these); empty: no authentication, the caller decides by line.
    pub auth: Vec<AuthMethod>,
    /// Our CHAP Name.
    pub host_name: Vec<u8>,
    /// Our own IPCP address (the gateway side of every PPP link).
    pub local_ipv4: Ipv4Addr,
    /// Negotiate IPv6CP; when false, IPv6CP is refused with an LCP Protocol-Reject so
    /// that no client brings up IPv6 that goes nowhere.
    pub ipv6cp: bool,
    /// Our IPv6CP Interface-Identifier on every link (`None`: a random one per link).
    /// The gateway sets it to the modified EUI-64 of its access MAC, so that its
    /// link-local address over PPP, the source of its RAs, is the one it has on
    /// Ethernet.
    pub ipv6_interface_id: Option<InterfaceId>,
    /// Restart timer and counters (RFC 1661 4.6).
    pub limits: Limits,
    /// Time between LCP Echo-Requests (`None`: no keepalive).
    pub echo_interval: Option<Duration>,
    /// Unanswered Echo-Requests before the peer is declared dead.
    pub echo_failures: u32,
    /// Time for the authentication phase, the caller's decision included.
    pub auth_timeout: Duration,
    /// Authentication attempts a peer gets on one link.
    pub auth_attempts: u32,
    /// Length of CHAP challenges (8..=64 bytes).
    pub challenge_len: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mru: 1492,
            auth: vec![AuthMethod::Chap, AuthMethod::Pap],
            host_name: b"tollgate".to_vec(),
            local_ipv4: Ipv4Addr::new(10, 255, 255, 254),
            ipv6cp: false,
            ipv6_interface_id: None,
            limits: Limits::default(),
            echo_interval: Some(Duration::from_secs(30)),
            echo_failures: 3,
            auth_timeout: Duration::from_secs(30),
            auth_attempts: 1,
            challenge_len: 16,
        }
    }
}

/// What the caller grants a peer it authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The peer's IPv4 address (from a pool or Framed-IP-Address).
    pub address: Ipv4Addr,
    /// Primary and secondary DNS servers (RFC 1877); `None` rejects the option.
    pub dns: [Option<Ipv4Addr>; 2],
    /// The MTU the caller wants on the link (Framed-MTU); the engine reports the
    /// smaller of this and the negotiated MRU in [`Event::Ipv4Up`].
    pub mtu: Option<u16>,
    /// The peer's IPv6 Interface-Identifier, if the caller assigns it.
    pub interface_id: Option<InterfaceId>,
    /// The text of the Authenticate-Ack / CHAP Success.
    pub message: Vec<u8>,
}

impl Grant {
    /// A grant of `address` with no DNS, no MTU, no interface id.
    pub fn new(address: Ipv4Addr) -> Grant {
        Grant {
            address,
            dns: [None, None],
            mtu: None,
            interface_id: None,
            message: b"Welcome".to_vec(),
        }
    }
}

/// A packet to send on the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The PPP protocol number.
    pub protocol: u16,
    /// The packet (Code, Identifier, Length, Data).
    pub packet: Vec<u8>,
}

impl Transmit {
    /// The PPP frame: the two-byte protocol field and the packet (what goes after a
    /// PPPoE session header; L2TP adds `ff 03` in front).
    pub fn frame(&self) -> Vec<u8> {
        let mut f = Vec::with_capacity(2 + self.packet.len());
        f.extend_from_slice(&self.protocol.to_be_bytes());
        f.extend_from_slice(&self.packet);
        f
    }
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EndCause {
    /// The caller closed it (logout, DISC condition, CoA, `ctl`, shutdown); the text went
    /// into the Terminate-Request.
    Closed(String),
    /// The peer sent Terminate-Request.
    PeerTerminated,
    /// The lower layer went away (PADT, tunnel down).
    LowerDown,
    /// Echo-Requests went unanswered.
    PeerDead,
    /// The link is looped back (our own Magic-Number came back).
    LoopedBack,
    /// LCP did not converge (Max-Configure) or the peer rejected LCP itself.
    LcpFailed,
    /// The peer refused every authentication protocol offered.
    AuthRefused,
    /// The caller rejected the credentials and no attempt is left.
    AuthFailed,
    /// No credentials or no decision within the time allowed.
    AuthTimeout,
    /// No network protocol came up (or all went down).
    NoNetworkProtocol,
    /// The peer renegotiated LCP after authentication.
    LinkRenegotiated,
}

impl EndCause {
    /// The name records and `ctl` show.
    pub fn name(&self) -> &'static str {
        match self {
            EndCause::Closed(_) => "closed",
            EndCause::PeerTerminated => "peer_terminated",
            EndCause::LowerDown => "lower_down",
            EndCause::PeerDead => "peer_dead",
            EndCause::LoopedBack => "looped_back",
            EndCause::LcpFailed => "lcp_failed",
            EndCause::AuthRefused => "auth_refused",
            EndCause::AuthFailed => "auth_failed",
            EndCause::AuthTimeout => "auth_timeout",
            EndCause::NoNetworkProtocol => "no_network_protocol",
            EndCause::LinkRenegotiated => "link_renegotiated",
        }
    }
}

/// What happened on a link, for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// LCP is open. The fast path may answer Echo-Requests itself with `magic`; it must
    /// not send the peer frames longer than `peer_mru`.
    LinkUp {
        /// The peer's MRU (what it can receive).
        peer_mru: u16,
        /// Our MRU (what we told the peer to send at most).
        local_mru: u16,
        /// Our Magic-Number (0: none negotiated).
        magic: u32,
        /// The peer's Magic-Number.
        peer_magic: u32,
    },
    /// Credentials to check: answer with [`Session::accept`] or [`Session::reject`].
    Authenticate(AuthRequest),
    /// IPCP is open: install the session's IPv4 address in the fast path.
    Ipv4Up {
        /// Our address.
        local: Ipv4Addr,
        /// The peer's (granted) address.
        peer: Ipv4Addr,
        /// The DNS servers given.
        dns: [Option<Ipv4Addr>; 2],
        /// The MTU for MSS clamping: the peer's MRU, our MRU and the grant's MTU, least.
        mtu: u16,
    },
    /// IPCP left the Opened state.
    Ipv4Down,
    /// IPv6CP is open.
    Ipv6Up {
        /// Our Interface-Identifier.
        local: InterfaceId,
        /// The peer's.
        peer: InterfaceId,
    },
    /// IPv6CP left the Opened state.
    Ipv6Down,
    /// The link is finished: send PADT (PPPoE) or CDN (L2TP) and forget the session.
    Finished {
        /// Why.
        cause: EndCause,
    },
}

/// Why an input frame was discarded (per-session counters, named for `ctl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// A control packet whose header, options or fields do not parse.
    Malformed,
    /// A reply whose Identifier (or acknowledged options) does not match our request.
    BadIdentifier,
    /// A protocol not expected in the current phase (an NCP before the network phase,
    /// PAP/CHAP outside authentication; RFC 1661 says discard).
    WrongPhase,
    /// A PAP/CHAP packet of the method not negotiated, or a code an authenticator does
    /// not receive.
    UnexpectedAuth,
    /// A retransmitted request while the decision is pending.
    Retransmission,
    /// An IP datagram punted to the control plane (the fast path forwards those).
    DataInControl,
    /// An unknown protocol while LCP is not open (answered with Protocol-Reject when it
    /// is, which is not a drop but counted as `protocol_rejected` too).
    ProtocolRejected,
    /// Input after the session finished or was handed off.
    AfterEnd,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 8;

    /// All reasons, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Malformed,
        DropReason::BadIdentifier,
        DropReason::WrongPhase,
        DropReason::UnexpectedAuth,
        DropReason::Retransmission,
        DropReason::DataInControl,
        DropReason::ProtocolRejected,
        DropReason::AfterEnd,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::BadIdentifier => "bad_identifier",
            DropReason::WrongPhase => "wrong_phase",
            DropReason::UnexpectedAuth => "unexpected_auth",
            DropReason::Retransmission => "retransmission",
            DropReason::DataInControl => "data_in_control",
            DropReason::ProtocolRejected => "protocol_rejected",
            DropReason::AfterEnd => "after_end",
        }
    }
}

/// The phases of a link (RFC 1661 section 3.2), plus the hand-off of a LAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// LCP negotiating.
    Establish,
    /// LCP open, authenticating.
    Authenticate,
    /// Authenticated, NCPs negotiating or open.
    Network,
    /// Terminate-Request sent, waiting for the Ack.
    Terminate,
    /// Finished.
    Dead,
    /// Handed to an L2TP tunnel unterminated (LAC); the engine no longer speaks.
    HandedOff,
}

impl Phase {
    /// The name `ctl show session` prints.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Establish => "establish",
            Phase::Authenticate => "authenticate",
            Phase::Network => "network",
            Phase::Terminate => "terminate",
            Phase::Dead => "dead",
            Phase::HandedOff => "handed-off",
        }
    }
}
