//! Per-worker counters: packets and bytes per side, one counter per drop reason, and the
//! engine's own events. Plain `u64`s in a cache-aligned block that only its worker
//! writes; the control plane sees copies in [`crate::msg::WorkerReport`]s.

macro_rules! drop_reasons {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal, )*) => {
        /// Why the fast path dropped a packet. Each variant indexes a counter; the control
        /// plane renders the names (VPP's `foreach_*_error`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant),*];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();

            /// The counter name operators see (`show counters`, metrics).
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }

            /// One line saying what the counter means.
            pub const fn describe(self) -> &'static str {
                match self { $(DropReason::$variant => concat!($($doc),*),)* }
            }
        }
    };
}

drop_reasons! {
    /// Frame shorter than an Ethernet header, or a VLAN tag cut short.
    EthTooShort = "eth_too_short",
    /// Unicast frame for another MAC address.
    EthNotForUs = "eth_not_for_us",
    /// Tagged frame not forwarded: from the core side, with more than two tags, or IPoE
    /// from an address without a session while strangers are forwarded.
    VlanNotConfigured = "vlan_not_configured",
    /// EtherType other than IPv4, ARP, IPv6 and (access side) PPPoE; IPv6 too while
    /// `[ipv6]` is off.
    UnsupportedEthertype = "ethertype_unsupported",
    /// ARP packet cut short or not Ethernet/IPv4.
    ArpMalformed = "arp_malformed",
    /// ARP request for an address that is not the gateway's on this side.
    ArpNotForUs = "arp_not_for_us",
    /// IPv4 header cut short, wrong version, or lengths that do not add up.
    Ipv4Malformed = "ipv4_malformed",
    /// IPv4 header checksum does not verify.
    Ipv4BadChecksum = "ipv4_bad_checksum",
    /// Source address is multicast, broadcast, loopback, unspecified or one of ours.
    Ipv4MartianSource = "ipv4_martian_source",
    /// Destination is multicast or broadcast; the gateway does not forward those.
    Ipv4NotUnicast = "ipv4_not_unicast",
    /// TTL would reach zero; an ICMP time-exceeded went back when the rate allowed.
    TtlExpired = "ttl_expired",
    /// No route to the destination.
    NoRoute = "no_route",
    /// Addressed to the gateway itself, for something it does not serve (a NAT port is
    /// `nat_no_flow`).
    LocalUnsupported = "local_unsupported",
    /// ICMP message to the gateway cut short or with a bad checksum.
    IcmpMalformed = "icmp_malformed",
    /// Next hop not resolved: hold queue full, resolution failed, or held too long.
    NeighborUnresolved = "neighbor_unresolved",
    /// Neighbour table full; no room to track another next hop.
    NeighborTableFull = "neighbor_table_full",
    /// Punt ring to the control plane full.
    PuntRingFull = "punt_ring_full",
    /// Port transmit queue full (short tx burst); the unsent tail was freed.
    TxFull = "tx_full",
    /// Worker stopped while the packet was held.
    Shutdown = "shutdown",
    /// Uplink from an address without a session (SES-4: dropped, or punted for login).
    UnknownSubscriber = "unknown_subscriber",
    /// Downlink to an access-side address without a session.
    NoSession = "no_session",
    /// Uplink from a session's address but another MAC, or as IPoE from a PPPoE
    /// session's address (anti-spoofing).
    SourceSpoofed = "source_spoofed",
    /// Over the session's declared bandwidth (policer).
    Policed = "policed",
    /// Would have broken a volume or rate limit; the session ended.
    SessionLimit = "session_limit",
    /// To a service the subscriber may not use (AUTHZ-2; a TCP reset or ICMP
    /// unreachable went back when the rate allowed).
    ServiceRefused = "service_refused",
    /// To a VIP on a protocol or port no service listens on (answered like a refusal).
    NoService = "no_service",
    /// Every real server of the service is down.
    NoServerUp = "no_server_up",
    /// TCP segment to a VIP with no flow (not a SYN, or expired), or a packet to a NAT
    /// address and port that no flow holds (a server's answer after its flow ended, or
    /// from another server or port than the flow's).
    NatNoFlow = "nat_no_flow",
    /// To a VIP as a fragment, ICMP other than echo, or with a TCP, UDP or ICMP header
    /// cut short by the IPv4 total length.
    NatUnsupported = "nat_unsupported",
    /// The subscriber has as many flows open as allowed (NAT-6).
    FlowLimit = "flow_limit",
    /// The worker's flow table is full (NAT-6).
    FlowTableFull = "flow_table_full",
    /// No free NAT port on any address.
    NatNoPort = "nat_no_port",
    /// Every destination of the source's load-balancing range is down (LB-2).
    LbAllDown = "lb_all_down",
    /// The handoff ring to the worker that owns the packet's session or NAT flow was full.
    HandoffFull = "handoff_full",
    /// L2TP message to the gateway cut short, not version 2, with lengths that do not add
    /// up, or fragmented.
    L2tpMalformed = "l2tp_malformed",
    /// L2TP data message for a session id the gateway did not assign, another tunnel,
    /// from an address other than the tunnel's peer, or (LAC) for a session that carries
    /// no switched PPPoE call.
    L2tpUnknownSession = "l2tp_unknown_session",
    /// L2TP data message carrying IPv6 in PPP where it is not carried: `[ipv6]` off at
    /// the LNS (IPv6CP is refused there).
    L2tpNotIpv4 = "l2tp_ppp_not_ipv4",
    /// LNS: an IPv4 or IPv6 packet out of an L2TP session whose subscriber has no
    /// gateway session on this worker (the L2TP session is installed before the gateway
    /// session reaches the worker, or they disagree): nothing to count, police or NAT it
    /// to, so it is not forwarded.
    L2tpNoSession = "l2tp_no_session",
    /// Would exceed `l2tp.mtu` once encapsulated (an ICMP fragmentation-needed went back
    /// when DF was set and the rate allowed).
    L2tpTooBig = "l2tp_too_big",
    /// LAC: a PPP frame switched between PPPoE and L2TP whose lengths do not add up, or
    /// an IPv4 packet in it whose header does not parse.
    LacMalformed = "lac_malformed",
    /// LAC: a PPPoE frame that would exceed `l2tp.mtu` once switched into L2TP.
    LacTooBig = "lac_too_big",
    /// PPPoE session frame on the access side cut short, not version 1 type 1, or with a
    /// code other than session data.
    PppoeMalformed = "pppoe_malformed",
    /// PPPoE session frame carrying IPv4 for no session installed with its VLANs, client
    /// MAC and PPPoE session id.
    PppoeSessionUnknown = "pppoe_session_unknown",
    /// PPPoE session frame whose IPv4 source is not its session's address
    /// (anti-spoofing).
    PppoeSourceMismatch = "pppoe_source_mismatch",
    /// Downlink IPv4 longer than its PPPoE session's MTU (not fragmented; with DF an
    /// ICMP fragmentation-needed carrying the MTU went back when the rate allowed).
    PppoeTooBig = "pppoe_too_big",
    /// IPoE uplink from a session's address with other VLAN tags than its line's.
    VlanMismatch = "vlan_mismatch",
    /// No headroom left in the buffer for the access line's VLAN tags and PPPoE header.
    EncapNoRoom = "encap_no_room",
    /// IPv6 header cut short, or a payload length or extension header past the frame.
    Ipv6Truncated = "ipv6_truncated",
    /// EtherType IPv6 but a version other than 6.
    Ipv6BadVersion = "ipv6_bad_version",
    /// More extension headers than the fast path walks before the upper layer.
    Ipv6ExtChainTooLong = "ipv6_ext_chain_too_long",
    /// An IPv6 fragment (fragment header): not reassembled or forwarded.
    Ipv6Fragment = "ipv6_fragment",
    /// Hop limit would reach zero; an ICMPv6 Time Exceeded went back when the rate
    /// allowed.
    Ipv6HopLimitExceeded = "ipv6_hop_limit_exceeded",
    /// RA guard: a Router Advertisement or Redirect from the access side.
    Ipv6RaGuard = "ipv6_ra_guard",
    /// IPv6 source multicast, unspecified or loopback (outside neighbour discovery).
    Ipv6MartianSource = "ipv6_martian_source",
    /// IPv6 to a multicast or link-local destination that is not neighbour discovery or
    /// DHCPv6 for the gateway, or from a link-local source beyond the link.
    Ipv6NotForwarded = "ipv6_not_forwarded",
    /// Uplink IPv6 from outside every session's /64, or from another MAC or line than
    /// that session's (anti-spoofing).
    Ipv6SourceSpoofed = "ipv6_source_spoofed",
    /// Downlink IPv6 to a /64 no session holds.
    Ipv6NoSession = "ipv6_no_session",
    /// Uplink IPv6 while its next hop (the default `next_hop`, a route's, or a connected
    /// destination itself) has no MAC (not configured, not resolved yet).
    Ipv6NextHopUnresolved = "ipv6_next_hop_unresolved",
    /// Uplink IPv6 to a destination no IPv6 route holds, without a default `next_hop`.
    Ipv6NoRoute = "ipv6_no_route",
    /// NAT64: a protocol or ICMP type that is not translated (TCP, UDP and ICMP echo
    /// are), a fragment, or an upper-layer header cut short.
    Nat64Unsupported = "nat64_unsupported",
    /// NAT64: an ICMP or ICMPv6 error RFC 7915 does not translate (source quench,
    /// redirect, some codes and pointers), or one about a VIP's flow.
    Nat64IcmpError = "nat64_icmp_error",
    /// NAT64: uplink IPv6 longer than `[nat64] mtu` once translated (answered with
    /// Packet Too Big when the access side has an ICMPv6 error source).
    Nat64PacketTooBig = "nat64_packet_too_big",
    /// NAT64: IPv4 to a pool address and port no binding holds (or from another
    /// address or port than its binding's), or TCP other than a SYN without a binding.
    Nat64NoBinding = "nat64_no_binding",
    /// NAT64: no port left on any pool address for a new binding.
    Nat64NoPort = "nat64_no_port",
    /// NAT64: the worker's binding table is full.
    Nat64TableFull = "nat64_table_full",
    /// NAT64: an embedded IPv4 destination that is not unicast, the gateway's own, or
    /// routed to the access side (no hairpinning).
    Nat64BadDestination = "nat64_bad_destination",
}

/// Packets and bytes through one side's port, counted by the worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SideCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received (Ethernet frame, no FCS).
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// Everything one worker counts. Only its worker writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(align(64))]
pub struct WorkerCounters {
    /// Per side, indexed by [`crate::Side::idx`].
    pub sides: [SideCounters; 2],
    /// Per [`DropReason`].
    pub drops: [u64; DropReason::COUNT],
    /// Packets forwarded from one side to a port (after routing).
    pub forwarded: u64,
    /// Packets the gateway answered itself (ARP replies, echo replies, ICMP errors).
    pub replied: u64,
    /// Packets handed to the control plane and not forwarded.
    pub punted: u64,
    /// Copies sent to the control plane of packets that were also answered.
    pub punt_copies: u64,
    /// Copies not sent because the punt ring was full (the packet itself was handled).
    pub punt_copies_lost: u64,
    /// ICMP errors generated (each in the buffer of the packet it reports on, which is
    /// counted as dropped).
    pub icmp_errors: u64,
    /// TCP resets generated for refused connections (likewise).
    pub tcp_resets: u64,
    /// Sessions installed.
    pub sessions_installed: u64,
    /// Sessions ended (by command, by a condition, or at shutdown).
    pub sessions_closed: u64,
    /// NAT flows opened.
    pub flows_opened: u64,
    /// NAT flows closed (each with a record).
    pub flows_closed: u64,
    /// Unknown subscribers reported to the control plane.
    pub unknown_reported: u64,
    /// Events (session or flow records) lost because the ring and its overflow queue
    /// were full.
    pub events_lost: u64,
    /// Frames the control plane asked this worker to send.
    pub injected: u64,
    /// Packets put in the hold queue waiting for a neighbour.
    pub held: u64,
    /// Held packets sent after their neighbour resolved.
    pub released: u64,
    /// ICMP errors not sent because of the rate limit.
    pub icmp_rate_limited: u64,
    /// Events lost because the event ring was full.
    pub event_ring_full: u64,
    /// Commands applied.
    pub commands: u64,
    /// Forwarding snapshots picked up.
    pub snapshot_loads: u64,
    /// Polls made (one rx burst per side each).
    pub polls: u64,
    /// Polls that received at least one packet.
    pub busy_polls: u64,
    /// Packets received here and handed to the worker that owns their state.
    pub handed_off: u64,
    /// Packets another worker received and handed here.
    pub handoff_received: u64,
    /// Packets encapsulated into an L2TP session.
    pub l2tp_encapsulated: u64,
    /// Packets decapsulated from an L2TP session.
    pub l2tp_decapsulated: u64,
    /// L2TP control messages punted to the control plane.
    pub l2tp_control: u64,
    /// PPP control frames (LCP, PAP, CHAP, IPCP, ...) in L2TP data messages punted to the
    /// control plane (LNS: PPP is terminated there).
    pub l2tp_ppp_control: u64,
    /// PPPoE discovery and PPP control frames (LCP, PAP, CHAP, IPCP, ...) punted to the
    /// control plane.
    pub pppoe_control: u64,
    /// DHCPv4 client messages (UDP to port 67 from the access side) punted to the
    /// control plane.
    pub dhcp_client: u64,
    /// Relay mode: DHCP servers' replies (UDP to port 67 of the access address, from the
    /// core side) punted to the control plane.
    pub dhcp_server: u64,
    /// Servers chosen for a `login`-type service that could not be remembered for the
    /// login because the per-login stickiness table was full (its next flow is balanced
    /// again).
    pub sticky_full: u64,
    /// ICMPv6 neighbour discovery (RS, NS, NA) and DHCPv6 punted to the control plane.
    pub ipv6_control: u64,
    /// LAC: PPPoE frames switched into L2TP sessions (ACC-6).
    pub lac_switched_to_lns: u64,
    /// LAC: L2TP data messages switched to PPPoE subscribers.
    pub lac_switched_to_client: u64,
    /// LAC: of those to the LNS, PPP control frames (not counted to the session).
    pub lac_control_to_lns: u64,
    /// LAC: of those to subscribers, PPP control frames (not counted to the session).
    pub lac_control_to_client: u64,
    /// NAT64: IPv6 packets translated to IPv4 and sent on.
    pub nat64_up: u64,
    /// NAT64: IPv4 packets translated to IPv6 and sent to a subscriber.
    pub nat64_down: u64,
    /// NAT64 bindings opened.
    pub nat64_bindings_opened: u64,
    /// NAT64 bindings closed (timeout, reset, session end).
    pub nat64_bindings_closed: u64,
    /// NAT64: ICMP errors translated either way (counted in `nat64_up` / `nat64_down`
    /// too).
    pub nat64_icmp_errors: u64,
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            sides: [SideCounters::default(); 2],
            drops: [0; DropReason::COUNT],
            forwarded: 0,
            replied: 0,
            punted: 0,
            punt_copies: 0,
            punt_copies_lost: 0,
            icmp_errors: 0,
            tcp_resets: 0,
            sessions_installed: 0,
            sessions_closed: 0,
            flows_opened: 0,
            flows_closed: 0,
            unknown_reported: 0,
            events_lost: 0,
            injected: 0,
            held: 0,
            released: 0,
            icmp_rate_limited: 0,
            event_ring_full: 0,
            commands: 0,
            snapshot_loads: 0,
            polls: 0,
            busy_polls: 0,
            handed_off: 0,
            handoff_received: 0,
            l2tp_encapsulated: 0,
            l2tp_decapsulated: 0,
            l2tp_control: 0,
            l2tp_ppp_control: 0,
            pppoe_control: 0,
            dhcp_client: 0,
            dhcp_server: 0,
            sticky_full: 0,
            ipv6_control: 0,
            lac_switched_to_lns: 0,
            lac_switched_to_client: 0,
            lac_control_to_lns: 0,
            lac_control_to_client: 0,
            nat64_up: 0,
            nat64_down: 0,
            nat64_bindings_opened: 0,
            nat64_bindings_closed: 0,
            nat64_icmp_errors: 0,
        }
    }
}

impl WorkerCounters {
    /// Packets received on both sides.
    pub fn rx_packets(&self) -> u64 {
        self.sides.iter().map(|s| s.rx_packets).sum()
    }

    /// Packets sent on both sides.
    pub fn tx_packets(&self) -> u64 {
        self.sides.iter().map(|s| s.tx_packets).sum()
    }

    /// The conservation law every worker keeps: everything that came in, was injected,
    /// was generated (ICMP errors, TCP resets) or was handed here by another worker left
    /// as a sent packet, a drop, a punt, a packet handed to another worker, or is still
    /// held. Returns `(in, out)`, equal when `held_now` is the hold queue's length. Summed
    /// over workers, what was handed off and what was received cancel out once the
    /// handoff rings are empty.
    pub fn balance(&self, held_now: u64) -> (u64, u64) {
        (
            self.rx_packets()
                + self.injected
                + self.icmp_errors
                + self.tcp_resets
                + self.handoff_received,
            self.tx_packets() + self.total_drops() + self.punted + held_now + self.handed_off,
        )
    }

    /// Counts one drop.
    #[inline(always)]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    /// A drop counter by reason.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds `o` into `self` (aggregating workers).
    pub fn accumulate(&mut self, o: &WorkerCounters) {
        for (a, b) in self.sides.iter_mut().zip(o.sides.iter()) {
            a.rx_packets += b.rx_packets;
            a.rx_bytes += b.rx_bytes;
            a.tx_packets += b.tx_packets;
            a.tx_bytes += b.tx_bytes;
        }
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
        self.forwarded += o.forwarded;
        self.replied += o.replied;
        self.punted += o.punted;
        self.punt_copies += o.punt_copies;
        self.punt_copies_lost += o.punt_copies_lost;
        self.icmp_errors += o.icmp_errors;
        self.tcp_resets += o.tcp_resets;
        self.sessions_installed += o.sessions_installed;
        self.sessions_closed += o.sessions_closed;
        self.flows_opened += o.flows_opened;
        self.flows_closed += o.flows_closed;
        self.unknown_reported += o.unknown_reported;
        self.events_lost += o.events_lost;
        self.injected += o.injected;
        self.held += o.held;
        self.released += o.released;
        self.icmp_rate_limited += o.icmp_rate_limited;
        self.event_ring_full += o.event_ring_full;
        self.commands += o.commands;
        self.snapshot_loads += o.snapshot_loads;
        self.polls += o.polls;
        self.busy_polls += o.busy_polls;
        self.handed_off += o.handed_off;
        self.handoff_received += o.handoff_received;
        self.l2tp_encapsulated += o.l2tp_encapsulated;
        self.l2tp_decapsulated += o.l2tp_decapsulated;
        self.l2tp_control += o.l2tp_control;
        self.l2tp_ppp_control += o.l2tp_ppp_control;
        self.pppoe_control += o.pppoe_control;
        self.dhcp_client += o.dhcp_client;
        self.dhcp_server += o.dhcp_server;
        self.sticky_full += o.sticky_full;
        self.ipv6_control += o.ipv6_control;
        self.lac_switched_to_lns += o.lac_switched_to_lns;
        self.lac_switched_to_client += o.lac_switched_to_client;
        self.lac_control_to_lns += o.lac_control_to_lns;
        self.lac_control_to_client += o.lac_control_to_client;
        self.nat64_up += o.nat64_up;
        self.nat64_down += o.nat64_down;
        self.nat64_bindings_opened += o.nat64_bindings_opened;
        self.nat64_bindings_closed += o.nat64_bindings_closed;
        self.nat64_icmp_errors += o.nat64_icmp_errors;
    }

    /// The engine counters that are not per side or per drop reason, by name, in a fixed
    /// order (for `show counters` and metrics).
    pub fn named(&self) -> [(&'static str, u64); 42] {
        [
            ("forwarded", self.forwarded),
            ("replied", self.replied),
            ("punted", self.punted),
            ("punt_copies", self.punt_copies),
            ("punt_copies_lost", self.punt_copies_lost),
            ("icmp_errors", self.icmp_errors),
            ("tcp_resets", self.tcp_resets),
            ("sessions_installed", self.sessions_installed),
            ("sessions_closed", self.sessions_closed),
            ("flows_opened", self.flows_opened),
            ("flows_closed", self.flows_closed),
            ("unknown_reported", self.unknown_reported),
            ("events_lost", self.events_lost),
            ("injected", self.injected),
            ("held", self.held),
            ("released", self.released),
            ("icmp_rate_limited", self.icmp_rate_limited),
            ("event_ring_full", self.event_ring_full),
            ("commands", self.commands),
            ("snapshot_loads", self.snapshot_loads),
            ("polls", self.polls),
            ("busy_polls", self.busy_polls),
            ("handed_off", self.handed_off),
            ("handoff_received", self.handoff_received),
            ("l2tp_encapsulated", self.l2tp_encapsulated),
            ("l2tp_decapsulated", self.l2tp_decapsulated),
            ("l2tp_control", self.l2tp_control),
            ("l2tp_ppp_control", self.l2tp_ppp_control),
            ("pppoe_control", self.pppoe_control),
            ("dhcp_client", self.dhcp_client),
            ("dhcp_server", self.dhcp_server),
            ("sticky_full", self.sticky_full),
            ("ipv6_control", self.ipv6_control),
            ("lac_switched_to_lns", self.lac_switched_to_lns),
            ("lac_switched_to_client", self.lac_switched_to_client),
            ("lac_control_to_lns", self.lac_control_to_lns),
            ("lac_control_to_client", self.lac_control_to_client),
            ("nat64_up", self.nat64_up),
            ("nat64_down", self.nat64_down),
            ("nat64_bindings_opened", self.nat64_bindings_opened),
            ("nat64_bindings_closed", self.nat64_bindings_closed),
            ("nat64_icmp_errors", self.nat64_icmp_errors),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_described() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(!r.describe().is_empty());
        }
        assert_eq!(std::mem::align_of::<WorkerCounters>(), 64);
    }

    /// docs/ctl.md's table of drop reasons lists every counter, in counter order, and
    /// nothing else.
    #[test]
    fn the_operators_table_of_drop_reasons_is_complete() {
        let doc = include_str!("../../docs/ctl.md");
        let table = doc
            .split_once("Drop reasons (one counter each")
            .expect("the drop-reason table in docs/ctl.md")
            .1;
        let documented: Vec<&str> = table
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| l.strip_prefix("| `")?.split_once('`').map(|(n, _)| n))
            .collect();
        let names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(documented, names);
    }
}
