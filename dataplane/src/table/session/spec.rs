//! What the control plane says about a subscriber session, and what the fast path says
//! back: the install spec, live updates, disconnect causes, counters and the final record.
//! Plain `Copy` data, so commands and events carry them by value on the rings.

use std::net::Ipv4Addr;

use crate::time::Instant;
use crate::types::MacAddr;

/// A session, numbered by the control plane (dense, reused after close).
pub type SessionId = u32;

/// The services a subscriber may use (AUTHZ-1): bit `i` allows service index `i`
/// (at most [`ServiceSet::MAX`] services).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServiceSet(pub u128);

impl ServiceSet {
    /// The most services a set can name.
    pub const MAX: usize = crate::service::MAX_SERVICES;
    /// Every service.
    pub const ALL: ServiceSet = ServiceSet(u128::MAX);
    /// No service.
    pub const NONE: ServiceSet = ServiceSet(0);

    /// A set from service indexes; indexes from [`Self::MAX`] up are ignored.
    pub fn from_indexes(ix: impl IntoIterator<Item = u16>) -> ServiceSet {
        ServiceSet(
            ix.into_iter()
                .filter(|i| (*i as usize) < Self::MAX)
                .fold(0, |s, i| s | 1u128 << i),
        )
    }

    /// True if service `i` is allowed.
    #[inline(always)]
    pub fn allows(self, i: u16) -> bool {
        (i as usize) < Self::MAX && self.0 >> i & 1 == 1
    }
}

/// Declared bandwidth, each direction in bit/s; 0 leaves that direction unpoliced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bandwidth {
    /// From the subscriber (uplink).
    pub up_bps: u64,
    /// To the subscriber (downlink).
    pub down_bps: u64,
}

/// Volume limits (DISC-1 C). A packet that would take a counter over its limit is dropped
/// and ends the session, so the final counters never exceed a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VolumeLimit {
    /// Bytes sent by the subscriber.
    pub tx_bytes: Option<u64>,
    /// Bytes received by the subscriber.
    pub rx_bytes: Option<u64>,
    /// Bytes both ways.
    pub total_bytes: Option<u64>,
    /// Packets sent by the subscriber.
    pub tx_packets: Option<u64>,
    /// Packets received by the subscriber.
    pub rx_packets: Option<u64>,
}

/// Traffic rate as a share of the path (DISC-1 E): over fixed windows from the session's
/// start, the bytes both ways may not exceed `percent` % of what `path_bps` carries in a
/// window. The packet that would cross that ends the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// Share of the path, in percent (1..=100).
    pub percent: u8,
    /// The path's maximum rate in bit/s.
    pub path_bps: u64,
    /// Window length in milliseconds.
    pub window_ms: u32,
}

/// The disconnect conditions the fast path checks (DISC-1 A, B, C, E; D and F are
/// decided by the control plane, F by giving an idle limit towards the application
/// server just below its own timeout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// A: the session ends this long after it started.
    pub session_timeout_ms: Option<u64>,
    /// B: the session ends after this long without a packet either way.
    pub idle_timeout_ms: Option<u64>,
    /// B, per server: the session ends after `.1` ms without a packet to or from `.0`.
    pub idle_server: Option<(Ipv4Addr, u64)>,
    /// C: volume.
    pub volume: VolumeLimit,
    /// E: rate as a share of the path.
    pub rate: Option<RateLimit>,
}

/// One VLAN tag of an access line (ACC-4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// The tag protocol identifier: 0x8100 (802.1Q) or 0x88a8 (802.1ad S-tag); an outer
    /// 0x8100 is accepted as an S-tag too.
    pub tpid: u16,
    /// The VLAN id (12 bits); 0 is a priority tag.
    pub vid: u16,
}

/// The VLAN tags that, with the port, identify an access line: none, one (a C-VLAN, or a
/// 1:1 VLAN) or two (S-VLAN outer, C-VLAN inner). Uplink frames of a session must carry
/// exactly these; downlink frames are tagged with them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Vlans {
    /// The outer tag (the only one when single-tagged).
    pub outer: Option<VlanTag>,
    /// The inner tag of a QinQ line.
    pub inner: Option<VlanTag>,
}

impl Vlans {
    /// The line's tags as the fast path compares them ([`VlanKey`]).
    pub fn key(&self) -> VlanKey {
        [self.outer, self.inner]
            .into_iter()
            .flatten()
            .fold(VlanKey::UNTAGGED, |k, t| k.push(t.vid))
    }
}

/// The VLAN ids of a line or of a frame's tags, outer first, packed in a `u32` (the
/// outermost non-priority tag in the high half when there are two). Priority tags
/// (VID 0, 802.1Q §9.6) carry no VLAN and are left out, so a priority-tagged frame
/// belongs to an untagged line; the TPIDs are not compared (an outer 0x8100 is as good
/// an S-tag as 0x88a8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VlanKey(pub u32);

impl VlanKey {
    /// No VLAN.
    pub const UNTAGGED: VlanKey = VlanKey(0);

    /// The key with one more (inner) tag of id `vid`.
    #[inline(always)]
    pub const fn push(self, vid: u16) -> VlanKey {
        let vid = vid & 0x0fff;
        if vid == 0 {
            self
        } else {
            VlanKey(self.0 << 16 | 0x1000 | vid as u32)
        }
    }

    /// True without a VLAN.
    #[inline(always)]
    pub const fn is_untagged(self) -> bool {
        self.0 == 0
    }

    /// The VLAN ids, outer first, and how many there are.
    #[inline(always)]
    pub const fn vids(self) -> ([u16; 2], usize) {
        let (hi, lo) = ((self.0 >> 16) as u16, self.0 as u16);
        if hi != 0 {
            ([hi & 0x0fff, lo & 0x0fff], 2)
        } else if lo != 0 {
            ([lo & 0x0fff, 0], 1)
        } else {
            ([0, 0], 0)
        }
    }
}

/// How a subscriber's IPv4 packets are framed on the access side (ACC-1, ACC-2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encap {
    /// Plain Ethernet (IPoE).
    #[default]
    Ipoe,
    /// A PPPoE session (RFC 2516): ethertype 0x8864, this session id, PPP protocol 0x0021.
    Pppoe {
        /// The PPPoE session id the access concentrator assigned.
        session: u16,
    },
    /// PPP terminated here over an L2TP session (LNS): the subscriber's packets come out
    /// of that session (decapsulated by the tunnel stage, then through the subscriber
    /// stages like any uplink) and go back into it (encapsulated toward the LAC after
    /// the subscriber stages). The session's MAC is [`crate::wire::l2tp::subscriber_mac`].
    L2tp {
        /// Our L2TP session id.
        session: u16,
    },
}

/// Where and how a session's subscriber is reached on the access side. The default is an
/// untagged IPoE line without MSS clamping, what every session was before PPPoE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AccessLine {
    /// The line's VLAN tags.
    pub vlans: Vlans,
    /// IPoE or PPPoE.
    pub encap: Encap,
    /// ACC-5: the largest TCP MSS a SYN or SYN-ACK of this session may carry (lowered to
    /// it, checksum updated incrementally); 0 leaves MSS options alone. PPPoE with MTU 1492
    /// gives 1452.
    pub mss_clamp: u16,
}

/// What the control plane installs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSpec {
    /// The session.
    pub id: SessionId,
    /// The subscriber (user) id, numbered by the control plane.
    pub user: u64,
    /// The channel (line) id.
    pub channel: u32,
    /// The subscriber's address; uplink packets must come from it.
    pub address: Ipv4Addr,
    /// The subscriber's MAC when known: uplink frames must come from it, downlink
    /// frames go to it. Otherwise learned from the first uplink frame.
    pub mac: Option<MacAddr>,
    /// When the session started (authentication), on the engine clock.
    pub started: Instant,
    /// Disconnect conditions.
    pub limits: Limits,
    /// Declared bandwidth; the policer's rate.
    pub bandwidth: Bandwidth,
    /// Services the subscriber may use.
    pub services: ServiceSet,
    /// Flows this subscriber may have open at once (NAT-6); 0 means the engine default.
    pub max_flows: u32,
    /// The access line: VLAN tags, IPoE or PPPoE, MSS clamp. For PPPoE, `mac` is the
    /// client's MAC and is required.
    pub access: AccessLine,
}

/// A live change to a session (CoA, ctl): each `Some` replaces the current value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionUpdate {
    /// New disconnect conditions.
    pub limits: Option<Limits>,
    /// New declared bandwidth.
    pub bandwidth: Option<Bandwidth>,
    /// New allowed services.
    pub services: Option<ServiceSet>,
    /// LNS: the L2TP session that carries the subscriber from now on (a switchover to
    /// another tunnel, TUN-3); ignored for a session not reached through L2TP.
    pub l2tp_session: Option<u16>,
}

/// Packets and bytes of a session (CNT-1), from the subscriber's point of view: `tx` is
/// what the subscriber sent (uplink), `rx` what it received (downlink). Bytes are IPv4
/// total length, whatever the link layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// Packets from the subscriber.
    pub tx_packets: u64,
    /// Bytes from the subscriber.
    pub tx_bytes: u64,
    /// Packets to the subscriber.
    pub rx_packets: u64,
    /// Bytes to the subscriber.
    pub rx_bytes: u64,
}

impl SessionCounters {
    /// Adds `o` into `self`.
    pub fn accumulate(&mut self, o: &SessionCounters) {
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DisconnectCause {
    /// The subscriber logged out.
    UserRequest,
    /// A: the maximum session time passed.
    SessionTimeout,
    /// B: no packet either way for the idle time.
    IdleTimeout,
    /// B, per server: no packet to or from the given server for its idle time.
    ServerIdleTimeout,
    /// C: a volume limit was reached.
    VolumeLimit,
    /// D: more simultaneous logins than allowed; this one was chosen to end.
    SimultaneousLogins,
    /// E: the traffic rate exceeded its share of the path.
    RateExceeded,
    /// F: ended just before the application's own timeout.
    ApplicationTimeout,
    /// An operator or a Disconnect-Request ended it.
    AdminReset,
    /// The gateway restarted while it was open.
    NasReboot,
    /// The gateway is shutting down.
    NasRequest,
    /// SES-1: dormant (no traffic) for longer than the dormant session timer allows.
    DormantTimeout,
    /// The subscriber's link went silent: a PPP peer stopped answering LCP echoes.
    LostCarrier,
}

impl DisconnectCause {
    /// Every cause.
    pub const ALL: [DisconnectCause; 13] = [
        DisconnectCause::UserRequest,
        DisconnectCause::SessionTimeout,
        DisconnectCause::IdleTimeout,
        DisconnectCause::ServerIdleTimeout,
        DisconnectCause::VolumeLimit,
        DisconnectCause::SimultaneousLogins,
        DisconnectCause::RateExceeded,
        DisconnectCause::ApplicationTimeout,
        DisconnectCause::AdminReset,
        DisconnectCause::NasReboot,
        DisconnectCause::NasRequest,
        DisconnectCause::DormantTimeout,
        DisconnectCause::LostCarrier,
    ];

    /// The RADIUS Acct-Terminate-Cause (RFC 2866 §5.10) the cause is reported as.
    pub const fn acct_terminate_cause(self) -> u32 {
        match self {
            DisconnectCause::UserRequest => 1,
            DisconnectCause::LostCarrier => 2,
            DisconnectCause::IdleTimeout
            | DisconnectCause::ServerIdleTimeout
            | DisconnectCause::ApplicationTimeout
            | DisconnectCause::DormantTimeout => 4,
            DisconnectCause::SessionTimeout => 5,
            DisconnectCause::AdminReset => 6,
            DisconnectCause::VolumeLimit
            | DisconnectCause::RateExceeded
            | DisconnectCause::NasRequest => 10,
            DisconnectCause::NasReboot => 11,
            DisconnectCause::SimultaneousLogins => 13,
        }
    }

    /// The operator's name for the cause.
    pub const fn name(self) -> &'static str {
        match self {
            DisconnectCause::UserRequest => "user_request",
            DisconnectCause::SessionTimeout => "session_timeout",
            DisconnectCause::IdleTimeout => "idle_timeout",
            DisconnectCause::ServerIdleTimeout => "server_idle_timeout",
            DisconnectCause::VolumeLimit => "volume_limit",
            DisconnectCause::SimultaneousLogins => "simultaneous_logins",
            DisconnectCause::RateExceeded => "rate_exceeded",
            DisconnectCause::ApplicationTimeout => "application_timeout",
            DisconnectCause::AdminReset => "admin_reset",
            DisconnectCause::NasReboot => "nas_reboot",
            DisconnectCause::NasRequest => "nas_request",
            DisconnectCause::DormantTimeout => "dormant_timeout",
            DisconnectCause::LostCarrier => "lost_carrier",
        }
    }

    /// The cause named `s` ([`Self::name`]).
    pub fn from_name(s: &str) -> Option<DisconnectCause> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// A session's final record, sent once when it ends (CNT-1, CNT-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClosedSession {
    /// The session.
    pub id: SessionId,
    /// Its user.
    pub user: u64,
    /// Its channel.
    pub channel: u32,
    /// Its address.
    pub address: Ipv4Addr,
    /// When it started.
    pub started: Instant,
    /// When it ended: the exact instant a timeout fell due, or when the packet or command
    /// that ended it was handled.
    pub stopped: Instant,
    /// Why.
    pub cause: DisconnectCause,
    /// Final counters.
    pub counters: SessionCounters,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_sets_and_causes() {
        let s = ServiceSet::from_indexes([0, 3, 127, 200]);
        assert!(s.allows(0) && s.allows(3) && s.allows(127));
        assert!(!s.allows(1) && !s.allows(128) && !s.allows(200));
        assert!(ServiceSet::ALL.allows(5) && !ServiceSet::NONE.allows(5));
        for c in DisconnectCause::ALL {
            assert_eq!(DisconnectCause::from_name(c.name()), Some(c));
            assert!((1..=18).contains(&c.acct_terminate_cause()));
        }
    }
}
