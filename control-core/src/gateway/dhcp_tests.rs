//! IPoE subscribers by DHCPv4 driven through the core with a fake clock: punted client
//! messages in (built as a client sends them, Ethernet/IPv4/UDP by etherparse), injected
//! replies, commands, logins, accounting and lease changes out. Replies are read with
//! etherparse (tags, addresses, ports, checksums) and the DHCP fields byte by byte.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use tollgate_dataplane::session::{
    AccessLine, ClosedSession, DisconnectCause, Encap, SessionCounters, SessionSpec, VlanTag, Vlans,
};
use tollgate_dataplane::{Command, Event, ForwardingBuilder, Frame, MacAddr, Side, SideConfig};

use super::aaa::{AaaPolicy, AuthAnswer, AuthRequest};
use super::dhcp::{DhcpSettings, LeaseChange};
use super::identifier::Identifier;
use super::neighbor::Timing;
use super::pools::{Pool, Pools, Range};
use super::{Core, CoreConfig, Output};
use crate::authz::Authorization;
use crate::dhcp::wire::{self, MessageBuilder, message_type as mt, op, option};
use crate::dhcp::{Lease, ServerConfig};
use crate::radius::attrs::{AcctRecord, PppoeLine};
use crate::radius::dict::AcctStatusType;
use crate::time::{Instant, WallClock};

const AC_MAC: [u8; 6] = [0x02, 0xac, 0, 0, 0, 1];
const SUB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x42];
const GW: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
const FIRST: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 100);
const DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
const SEC: u64 = 1_000_000_000;
const XID: u32 = 0x1234_5678;
const KEA: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
const KEA_MAC: [u8; 6] = [0x02, 0x4e, 0, 0, 0, 0x20];
const CORE_MAC: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 1];

fn settings() -> DhcpSettings {
    DhcpSettings {
        server: ServerConfig::new(GW),
        mask: Ipv4Addr::new(255, 255, 255, 0),
        dns: vec![DNS],
        lease_time: Duration::from_secs(600),
        decline_hold: Duration::from_secs(300),
        outer_tpid: 0x88a8,
        port_name: "access0".into(),
        relay: None,
    }
}

/// The ethertype past a frame's VLAN tags.
fn ethertype_after_tags(b: &[u8]) -> u16 {
    let mut at = 12;
    while matches!(u16::from_be_bytes([b[at], b[at + 1]]), 0x8100 | 0x88a8) {
        at += 4;
    }
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn core(dhcp: Option<DhcpSettings>, now: Instant) -> Core {
    core_with(dhcp, None, now)
}

fn core_with(
    dhcp: Option<DhcpSettings>,
    ipv6: Option<super::ipv6::Ipv6Settings>,
    now: Instant,
) -> Core {
    let fwd = ForwardingBuilder::new(
        SideConfig {
            mac: MacAddr(AC_MAC),
            address: GW,
            prefix_len: 24,
        },
        SideConfig {
            mac: MacAddr([0x02, 0xc0, 0, 0, 0, 1]),
            address: Ipv4Addr::new(192, 0, 2, 1),
            prefix_len: 24,
        },
    )
    .build()
    .unwrap();
    Core::new(
        now,
        Arc::new(fwd),
        CoreConfig {
            arp: Timing::default(),
            // Relay mode's DHCP server, on the core side.
            static_neighbors: vec![(KEA, MacAddr(KEA_MAC))],
            workers: 1,
            service_names: Vec::new(),
            // Engine time is Unix time, so persisted leases read back the same.
            clock: WallClock::UNIX,
            aaa: AaaPolicy {
                pools: Pools {
                    pools: vec![Pool {
                        name: "ipoe".into(),
                        ranges: vec![Range::new(FIRST, Ipv4Addr::new(10, 10, 0, 110), None)],
                    }],
                    nodes: Vec::new(),
                },
                ..AaaPolicy::default()
            },
            l2tp: None,
            pppoe: None,
            lns: None,
            ipv6,
            dhcp,
        },
    )
}

/// A reply the gateway injected, read with etherparse.
#[derive(Debug, Clone)]
struct Reply {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    tags: Vec<(u16, u16)>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ports: (u16, u16),
    message: Vec<u8>,
}

impl Reply {
    fn parse(f: &Frame) -> Reply {
        Reply::parse_on(f, Side::Access)
    }

    fn parse_on(f: &Frame, side: Side) -> Reply {
        assert_eq!(f.side, side);
        let b = f.bytes();
        let p = SlicedPacket::from_ethernet(b).unwrap();
        let Some(etherparse::LinkSlice::Ethernet2(eth)) = p.link.as_ref() else {
            panic!("not Ethernet II")
        };
        // The tags as they are on the wire: TPID then VID, outer first.
        let mut tags = Vec::new();
        let mut at = 12;
        while matches!(u16::from_be_bytes([b[at], b[at + 1]]), 0x8100 | 0x88a8) {
            tags.push((
                u16::from_be_bytes([b[at], b[at + 1]]),
                u16::from_be_bytes([b[at + 2], b[at + 3]]) & 0x0fff,
            ));
            at += 4;
        }
        assert_eq!(u16::from_be_bytes([b[at], b[at + 1]]), 0x0800);
        let ids: Vec<u16> = p.vlan_ids().iter().map(|v| v.value()).collect();
        assert_eq!(ids, tags.iter().map(|t| t.1).collect::<Vec<_>>());
        let ip = match p.net.as_ref().unwrap() {
            etherparse::NetSlice::Ipv4(ip) => ip.header().to_header(),
            _ => panic!("not IPv4"),
        };
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        let Some(TransportSlice::Udp(u)) = p.transport.as_ref() else {
            panic!("not UDP")
        };
        let uh = u.to_header();
        assert_eq!(
            uh.checksum,
            uh.calc_checksum_ipv4(&ip, u.payload()).unwrap(),
            "UDP checksum"
        );
        Reply {
            dst_mac: eth.destination(),
            src_mac: eth.source(),
            tags,
            src: Ipv4Addr::from(ip.source),
            dst: Ipv4Addr::from(ip.destination),
            ports: (uh.source_port, uh.destination_port),
            message: u.payload().to_vec(),
        }
    }

    fn view(&self) -> wire::Packet<&[u8]> {
        wire::Packet::new_checked(&self.message[..]).unwrap()
    }

    /// The value of option `code`.
    fn option(&self, code: u8) -> Option<Vec<u8>> {
        let p = self.view();
        p.options()
            .flatten()
            .find(|o| o.code == code)
            .map(|o| o.value.to_vec())
    }

    fn message_type(&self) -> u8 {
        self.option(option::MESSAGE_TYPE).unwrap()[0]
    }
}

struct Rig {
    core: Core,
    now: Instant,
    tags: Vec<(u16, u16)>,
    replies: Vec<Reply>,
    /// Relay mode: what went to the servers.
    relayed: Vec<Reply>,
    /// IPv6 frames to the subscriber (RAs, DHCPv6), raw.
    v6: Vec<Vec<u8>>,
    auth: Vec<AuthRequest>,
    installed: Vec<SessionSpec>,
    removed: Vec<(u32, DisconnectCause)>,
    account: Vec<AcctRecord>,
    leases: Vec<LeaseChange>,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(core(Some(settings()), Instant(1_000_000 * SEC)))
    }

    fn with(core: Core) -> Rig {
        Rig {
            core,
            now: Instant(1_000_000 * SEC),
            // A QinQ line: S-VLAN 100 (802.1ad), C-VLAN 7.
            tags: vec![(0x88a8, 100), (0x8100, 7)],
            replies: Vec::new(),
            relayed: Vec::new(),
            v6: Vec::new(),
            auth: Vec::new(),
            installed: Vec::new(),
            removed: Vec::new(),
            account: Vec::new(),
            leases: Vec::new(),
        }
    }

    /// A client message from SUB_MAC, `src` to `dst` (UDP 68 to 67), punted.
    fn send(&mut self, src: Ipv4Addr, dst: Ipv4Addr, dst_mac: [u8; 6], message: &[u8]) {
        let mut ip = Vec::new();
        PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
            .udp(68, 67)
            .write(&mut ip, message)
            .unwrap();
        let mut b = Vec::new();
        b.extend_from_slice(&dst_mac);
        b.extend_from_slice(&SUB_MAC);
        for &(tpid, vid) in &self.tags {
            b.extend_from_slice(&tpid.to_be_bytes());
            b.extend_from_slice(&vid.to_be_bytes());
        }
        b.extend_from_slice(&[0x08, 0x00]);
        b.extend_from_slice(&ip);
        self.core
            .on_punt(self.now, 0, &Frame::new(Side::Access, &b).unwrap());
        self.pump();
    }

    fn message(kind: u8, f: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        let mut m = MessageBuilder::new(op::BOOTREQUEST, XID, SUB_MAC);
        m.option(option::MESSAGE_TYPE, &[kind]);
        f(&mut m);
        m.finish()
    }

    fn discover(&mut self) {
        let m = Rig::message(mt::DISCOVER, |m| {
            m.flags(wire::BROADCAST_FLAG);
            m.option(option::PARAMETER_REQUEST_LIST, &[1, 3, 6, 51]);
        });
        self.send(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, [0xff; 6], &m);
    }

    /// REQUEST in the SELECTING state for `address`.
    fn request(&mut self, address: Ipv4Addr) {
        let m = Rig::message(mt::REQUEST, |m| {
            m.flags(wire::BROADCAST_FLAG);
            m.option_ip(option::SERVER_ID, GW);
            m.option_ip(option::REQUESTED_IP, address);
        });
        self.send(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, [0xff; 6], &m);
    }

    /// REQUEST in the RENEWING state: unicast from the leased address.
    fn renew(&mut self, address: Ipv4Addr) {
        let m = Rig::message(mt::REQUEST, |m| {
            m.ciaddr(address);
        });
        self.send(address, GW, AC_MAC, &m);
    }

    fn release(&mut self, address: Ipv4Addr) {
        let m = Rig::message(mt::RELEASE, |m| {
            m.ciaddr(address);
            m.option_ip(option::SERVER_ID, GW);
        });
        self.send(address, GW, AC_MAC, &m);
    }

    /// DECLINE of `address` (it answered ARP for someone else), broadcast.
    fn decline(&mut self, address: Ipv4Addr) {
        let m = Rig::message(mt::DECLINE, |m| {
            m.option_ip(option::SERVER_ID, GW);
            m.option_ip(option::REQUESTED_IP, address);
        });
        self.send(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, [0xff; 6], &m);
    }

    fn pump(&mut self) {
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Inject(_, f) if f.side == Side::Core => {
                    self.relayed.push(Reply::parse_on(&f, Side::Core))
                }
                Output::Inject(_, f) if ethertype_after_tags(f.bytes()) == 0x86dd => {
                    self.v6.push(f.bytes().to_vec())
                }
                Output::Inject(_, f) => self.replies.push(Reply::parse(&f)),
                Output::Authenticate(a) => self.auth.push(a),
                Output::Command(_, Command::SessionAdd(spec)) => self.installed.push(spec),
                Output::Command(_, Command::SessionRemove { id, cause }) => {
                    self.removed.push((id, cause))
                }
                Output::Account(r) => self.account.push(r),
                Output::Lease(c) => self.leases.push(c),
                _ => {}
            }
        }
    }

    fn accept(&mut self, a: Authorization) {
        let login = self.auth.last().unwrap().login;
        self.core.on_auth(
            self.now,
            login,
            AuthAnswer::Accept {
                user: "alice".into(),
                authorization: Box::new(a),
            },
        );
        self.pump();
    }

    /// The fast path's final record of `spec`'s session.
    fn closed(&mut self, spec: &SessionSpec, cause: DisconnectCause) {
        self.core.on_event(
            self.now,
            0,
            Event::SessionClosed(ClosedSession {
                id: spec.id,
                user: spec.user,
                channel: spec.channel,
                address: spec.address,
                started: spec.started,
                stopped: self.now,
                cause,
                counters: SessionCounters {
                    tx_packets: 3,
                    tx_bytes: 252,
                    rx_packets: 3,
                    rx_bytes: 252,
                },
            }),
        );
        self.pump();
    }

    fn counter(&self, name: &str) -> u64 {
        self.core
            .dhcp_counters()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no counter {name}"))
            .1
    }

    /// DISCOVER, login accepted, OFFER, REQUEST, ACK: a session.
    fn up() -> (Rig, SessionSpec) {
        let mut r = Rig::new();
        r.discover();
        r.accept(Authorization::default());
        r.request(FIRST);
        assert_eq!(r.installed.len(), 1);
        let spec = r.installed[0];
        (r, spec)
    }
}

fn qinq() -> Vlans {
    Vlans {
        outer: Some(VlanTag {
            tpid: 0x88a8,
            vid: 100,
        }),
        inner: Some(VlanTag {
            tpid: 0x8100,
            vid: 7,
        }),
    }
}

#[test]
fn a_discover_logs_in_by_mac_and_the_ack_installs_the_session_on_its_line() {
    let mut r = Rig::new();
    r.discover();
    // One login, by the client's MAC (no user name: the local store looks the MAC up;
    // RADIUS sends it as User-Name).
    assert_eq!(r.auth.len(), 1);
    let a = &r.auth[0];
    assert_eq!(a.user, None);
    assert_eq!(a.identifiers, vec![Identifier::Mac(MacAddr(SUB_MAC))]);
    assert_eq!(a.calling_station.as_deref(), Some("02:00:00:00:00:42"));
    // RADIUS gets the line (NAS-Port-Id), as IPoE: no Framed-Protocol PPP.
    let line = PppoeLine {
        nas_port_id: "access0.100.7".into(),
        circuit_id: None,
        remote_id: None,
        ipoe: true,
    };
    assert_eq!(a.line, Some(line.clone()));
    assert!(r.replies.is_empty(), "no OFFER before AAA answers");

    r.accept(Authorization::default());
    assert_eq!(r.replies.len(), 1);
    let offer = r.replies[0].clone();
    // Unicast at layer 2 to the client on its line, broadcast at layer 3 (the client
    // set the BROADCAST flag), from the gateway's server port to the client port.
    assert_eq!(offer.dst_mac, SUB_MAC);
    assert_eq!(offer.src_mac, AC_MAC);
    assert_eq!(offer.tags, vec![(0x88a8, 100), (0x8100, 7)]);
    assert_eq!((offer.src, offer.dst), (GW, Ipv4Addr::BROADCAST));
    assert_eq!(offer.ports, (67, 68));
    let m = &offer.message;
    assert_eq!(m[0], op::BOOTREPLY);
    assert_eq!(m[4..8], XID.to_be_bytes());
    assert_eq!(m[10..12], wire::BROADCAST_FLAG.to_be_bytes());
    assert_eq!(
        m[16..20],
        FIRST.octets(),
        "yiaddr: the pool's first address"
    );
    assert_eq!(m[28..34], SUB_MAC);
    assert_eq!(offer.message_type(), mt::OFFER);
    assert_eq!(offer.option(option::SERVER_ID), Some(GW.octets().to_vec()));
    assert_eq!(
        offer.option(option::SUBNET_MASK),
        Some(vec![255, 255, 255, 0])
    );
    assert_eq!(offer.option(option::ROUTER), Some(GW.octets().to_vec()));
    assert_eq!(offer.option(option::DNS), Some(DNS.octets().to_vec()));
    assert_eq!(
        offer.option(option::LEASE_TIME),
        Some(600u32.to_be_bytes().to_vec())
    );
    assert!(r.installed.is_empty(), "no session before the ACK");

    r.request(FIRST);
    assert_eq!(r.replies.len(), 2);
    let ack = &r.replies[1];
    assert_eq!(ack.message_type(), mt::ACK);
    assert_eq!(ack.message[16..20], FIRST.octets());
    assert_eq!((ack.dst_mac, ack.dst), (SUB_MAC, Ipv4Addr::BROADCAST));
    // The session: the leased address, the client's MAC, its line's tags, IPoE.
    assert_eq!(r.installed.len(), 1);
    let spec = r.installed[0];
    assert_eq!(spec.address, FIRST);
    assert_eq!(spec.mac, Some(MacAddr(SUB_MAC)));
    assert_eq!(
        spec.access,
        AccessLine {
            vlans: qinq(),
            encap: Encap::Ipoe,
            mss_clamp: 0,
        }
    );
    // Accounted, with the MAC as Calling-Station-Id; the lease kept for a restart.
    assert_eq!(r.account.len(), 1);
    assert_eq!(r.account[0].status, AcctStatusType::Start);
    assert_eq!(r.account[0].user_name, "alice");
    assert_eq!(r.account[0].framed_ip, Some(FIRST));
    assert_eq!(
        r.account[0].calling_station_id.as_deref(),
        Some("02:00:00:00:00:42")
    );
    assert_eq!(r.account[0].access, Some(line));
    assert_eq!(r.leases.len(), 1);
    assert_eq!(r.leases[0].key, "0.100.7-02:00:00:00:00:42");
    let lease = Lease::decode(r.leases[0].lease.as_deref().unwrap(), r.now, r.now.0 / SEC).unwrap();
    assert_eq!(lease.address(), FIRST);
    assert_eq!(lease.expires, r.now + Duration::from_secs(600));
    for (n, v) in [
        ("dhcp_punted", 2),
        ("dhcp_discover", 1),
        ("dhcp_offer", 1),
        ("dhcp_request", 1),
        ("dhcp_ack", 1),
        ("dhcp_frames_sent", 2),
        ("dhcp_auth_accepted", 1),
        ("dhcp_sessions_installed", 1),
        ("dhcp_leases", 1),
    ] {
        assert_eq!(r.counter(n), v, "{n}");
    }
}

#[test]
fn framed_ip_address_is_the_leased_address_and_a_renewal_extends_it() {
    let mut r = Rig::new();
    r.discover();
    let fixed = Ipv4Addr::new(10, 10, 0, 50);
    r.accept(Authorization {
        framed_ip: Some(fixed),
        ..Authorization::default()
    });
    assert_eq!(r.replies[0].message[16..20], fixed.octets());
    r.request(fixed);
    assert_eq!(r.installed[0].address, fixed);
    r.now = r.now + Duration::from_secs(300);
    r.renew(fixed);
    let ack = r.replies.last().unwrap();
    assert_eq!(ack.message_type(), mt::ACK);
    // RENEWING: to the client's address, unicast.
    assert_eq!((ack.dst_mac, ack.dst), (SUB_MAC, fixed));
    assert_eq!(r.leases.len(), 2, "the renewed lease is kept");
    // The old expiry passes: the lease lives on.
    r.now = r.now + Duration::from_secs(400);
    r.core.tick(r.now);
    r.pump();
    assert!(r.removed.is_empty());
    assert_eq!(r.installed.len(), 1);
}

#[test]
fn release_ends_the_session_with_a_stop_and_forgets_the_lease() {
    let (mut r, spec) = Rig::up();
    r.release(FIRST);
    assert_eq!(r.removed, vec![(spec.id, DisconnectCause::UserRequest)]);
    assert_eq!(r.leases.last().unwrap().lease, None);
    r.closed(&spec, DisconnectCause::UserRequest);
    let stop = r.account.last().unwrap();
    assert_eq!(stop.status, AcctStatusType::Stop);
    assert_eq!(stop.framed_ip, Some(FIRST));
    assert_eq!(stop.counters.octets_down, 252);
    assert_eq!(r.counter("dhcp_release"), 1);
    assert_eq!(r.counter("dhcp_ended_release"), 1);
    assert_eq!(r.counter("dhcp_leases"), 0);
    // The address went back to the pool: the next subscriber gets it.
    r.discover();
    r.accept(Authorization::default());
    assert_eq!(r.replies.last().unwrap().message[16..20], FIRST.octets());
}

#[test]
fn a_session_ended_elsewhere_ends_the_lease_and_the_renewal_gets_nak() {
    let (mut r, spec) = Rig::up();
    r.core
        .close_session(&FIRST.to_string(), DisconnectCause::AdminReset)
        .unwrap();
    r.pump();
    assert_eq!(r.removed, vec![(spec.id, DisconnectCause::AdminReset)]);
    r.closed(&spec, DisconnectCause::AdminReset);
    assert_eq!(r.account.last().unwrap().status, AcctStatusType::Stop);
    assert_eq!(r.leases.last().unwrap().lease, None);
    assert_eq!(r.counter("dhcp_ended_closed"), 1);
    r.renew(FIRST);
    let nak = r.replies.last().unwrap();
    assert_eq!(nak.message_type(), mt::NAK);
    assert_eq!((nak.dst_mac, nak.dst), (SUB_MAC, Ipv4Addr::BROADCAST));
    // No second removal for the session that is gone.
    assert_eq!(r.removed.len(), 1);
}

#[test]
fn an_expired_lease_ends_the_session() {
    let (mut r, spec) = Rig::up();
    r.now = r.now + Duration::from_secs(601);
    r.core.tick(r.now);
    r.pump();
    // The client went silent: Lost-Carrier, as for a PPP peer that stops answering.
    assert_eq!(r.removed, vec![(spec.id, DisconnectCause::LostCarrier)]);
    assert_eq!(r.leases.last().unwrap().lease, None);
    assert_eq!(r.counter("dhcp_expired"), 1);
}

#[test]
fn a_session_timeout_shorter_than_the_lease_bounds_the_lease_time() {
    let lease_time = |session_time_s| {
        let mut r = Rig::new();
        r.discover();
        let mut a = Authorization::default();
        a.conditions.session_time_s = session_time_s;
        r.accept(a);
        let offer = r.replies.last().unwrap();
        assert_eq!(offer.message_type(), mt::OFFER);
        let v = offer.option(option::LEASE_TIME).unwrap();
        u32::from_be_bytes(v.try_into().unwrap())
    };
    assert_eq!(lease_time(Some(120)), 120);
    // A longer one leaves the configured lease (600 s) alone.
    assert_eq!(lease_time(Some(7200)), 600);
    assert_eq!(lease_time(None), 600);
}

#[test]
fn a_declined_address_is_held_back_from_its_pool_until_the_hold_ends() {
    let (mut r, spec) = Rig::up();
    r.decline(FIRST);
    assert_eq!(r.removed, vec![(spec.id, DisconnectCause::UserRequest)]);
    assert_eq!(r.counter("dhcp_decline"), 1);
    r.closed(&spec, DisconnectCause::UserRequest);
    assert_eq!(r.account.last().unwrap().status, AcctStatusType::Stop);
    assert_eq!(r.counter("dhcp_addresses_held"), 1);

    // The client starts over (RFC 2131 3.1.5) and is offered another address.
    r.discover();
    r.accept(Authorization::default());
    let offer = r.replies.last().unwrap();
    assert_eq!(offer.message_type(), mt::OFFER);
    assert_eq!(offer.message[16..20], [10, 10, 0, 101]);
    assert!(!r.core.aaa_reserve(FIRST), "held: not free in its pool");

    // At the hold's end (300 s) it is back in the pool.
    r.now = r.now + Duration::from_secs(299);
    r.core.tick(r.now);
    assert_eq!(r.counter("dhcp_addresses_held"), 1);
    r.now = r.now + Duration::from_secs(1);
    assert!(r.core.poll_timeout().is_some_and(|t| t <= r.now));
    r.core.tick(r.now);
    assert_eq!(r.counter("dhcp_addresses_held"), 0);
    assert!(r.core.aaa_reserve(FIRST), "returned to its pool");
}

#[test]
fn a_rejected_login_gets_no_offer() {
    let mut r = Rig::new();
    r.discover();
    let login = r.auth[0].login;
    r.core
        .on_auth(r.now, login, AuthAnswer::Reject("unknown MAC".into()));
    r.pump();
    assert!(r.replies.is_empty());
    assert!(r.installed.is_empty());
    assert_eq!(r.counter("dhcp_rejected"), 1);
    assert_eq!(r.counter("dhcp_auth_rejected"), 1);
    // Within the refusal hold, AAA is not asked again.
    r.discover();
    assert_eq!(r.auth.len(), 1);
    assert_eq!(r.counter("dhcp_recently_rejected"), 1);
}

#[test]
fn leases_survive_a_restart_and_log_in_again_with_their_address() {
    let (r, spec) = Rig::up();
    let kept = r.leases[0].lease.clone().unwrap();
    // The gateway restarts 100 s later.
    let now = r.now + Duration::from_secs(100);
    let mut r2 = Rig::with(core(Some(settings()), now));
    r2.now = now;
    assert_eq!(r2.core.dhcp_restore(now, &[kept]), 1);
    r2.pump();
    assert_eq!(r2.auth.len(), 1);
    assert_eq!(
        r2.auth[0].identifiers,
        vec![Identifier::Mac(MacAddr(SUB_MAC))]
    );
    r2.accept(Authorization::default());
    // No OFFER: the client holds its lease; the session is back with its address and
    // line (the S-VLAN's TPID from the config).
    assert!(r2.replies.is_empty());
    assert_eq!(r2.installed.len(), 1);
    let s2 = r2.installed[0];
    assert_eq!((s2.address, s2.mac), (spec.address, spec.mac));
    assert_eq!(s2.access.vlans, qinq());
    assert_eq!(r2.account[0].status, AcctStatusType::Start);
    // The client renews as usual and gets ACK.
    r2.renew(FIRST);
    assert_eq!(r2.replies.last().unwrap().message_type(), mt::ACK);
    assert_eq!(r2.counter("dhcp_leases_restored"), 1);
}

#[test]
fn sessions_ended_by_a_stop_keep_their_leases() {
    let (mut r, spec) = Rig::up();
    r.core.dhcp_stopping();
    r.closed(&spec, DisconnectCause::NasRequest);
    // The Stop goes out; the lease is neither forgotten nor ended.
    assert_eq!(r.account.last().unwrap().status, AcctStatusType::Stop);
    assert_eq!(r.leases.len(), 1);
    assert_eq!(r.counter("dhcp_leases"), 1);
    assert!(r.removed.is_empty());
}

#[test]
fn a_lease_that_ran_out_while_down_is_forgotten() {
    let (r, _) = Rig::up();
    let kept = r.leases[0].lease.clone().unwrap();
    let now = r.now + Duration::from_secs(700);
    let mut r2 = Rig::with(core(Some(settings()), now));
    r2.now = now;
    assert_eq!(r2.core.dhcp_restore(now, &[kept]), 0);
    r2.pump();
    assert!(r2.auth.is_empty() && r2.installed.is_empty());
    assert_eq!(r2.leases.len(), 1);
    assert_eq!(r2.leases[0].lease, None);
}

#[test]
fn dhcp_while_off_is_a_counted_drop() {
    let mut r = Rig::with(core(None, Instant(1_000_000 * SEC)));
    r.discover();
    assert!(r.replies.is_empty() && r.auth.is_empty());
    assert_eq!(
        r.core.dhcp_counters(),
        vec![("dhcp_disabled".to_string(), 1)]
    );
    // Not counted as a malformed punt.
    assert_eq!(r.core.stats().punts_malformed, 0);
}

#[test]
fn option_82_circuit_id_is_the_user_name_when_configured() {
    let mut s = settings();
    s.server.login_by = crate::dhcp::LoginBy::CircuitId;
    let mut r = Rig::with(core(Some(s), Instant(1_000_000 * SEC)));
    r.tags.clear();
    // Option 82 as an L2 access node inserts it: circuit-id "olt-1 pon 3", remote-id.
    let ri = [&[1u8, 11][..], b"olt-1 pon 3", &[2, 4][..], b"cust"].concat();
    let m = Rig::message(mt::DISCOVER, |m| {
        m.option(option::RELAY_AGENT_INFO, &ri);
    });
    r.send(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, [0xff; 6], &m);
    assert_eq!(r.auth.len(), 1);
    assert_eq!(r.auth[0].user.as_deref(), Some("olt-1 pon 3"));
    assert_eq!(r.auth[0].password, None);
    // Option 82 goes to RADIUS as the TR-101 attributes.
    let line = r.auth[0].line.clone().unwrap();
    assert_eq!(
        (
            line.nas_port_id.as_str(),
            line.circuit_id.as_deref(),
            line.remote_id.as_deref()
        ),
        ("access0", Some(&b"olt-1 pon 3"[..]), Some(&b"cust"[..]))
    );
    r.accept(Authorization::default());
    let offer = &r.replies[0];
    assert_eq!(offer.message_type(), mt::OFFER);
    assert_eq!(offer.tags, Vec::<(u16, u16)>::new());
    // RFC 3046: the reply carries option 82 back as it came.
    assert_eq!(offer.option(option::RELAY_AGENT_INFO), Some(ri.clone()));
    // No flag, no ciaddr: to yiaddr at layer 3, the client's MAC at layer 2.
    assert_eq!((offer.dst_mac, offer.dst), (SUB_MAC, FIRST));
    // A DISCOVER without option 82 is refused without asking AAA.
    let other = Rig::message(mt::DISCOVER, |m| {
        m.flags(0);
    });
    r.tags = vec![(0x8100, 9)];
    r.send(
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        [0xff; 6],
        &other,
    );
    assert_eq!(r.auth.len(), 1);
    assert_eq!(r.counter("dhcp_no_line_id"), 1);
}

/// A server's reply to the relay, from the core side: BOOTREPLY `kind` to `xid`'s client,
/// `yiaddr`, giaddr the gateway, option 82 as the relay sent it.
fn server_reply(r: &mut Rig, kind: u8, yiaddr: Ipv4Addr, ri: &[u8]) {
    let mut m = MessageBuilder::new(op::BOOTREPLY, XID, SUB_MAC);
    m.yiaddr(yiaddr).giaddr(GW);
    m.option(option::MESSAGE_TYPE, &[kind]);
    m.option_ip(option::SERVER_ID, KEA);
    m.option_ip(option::SUBNET_MASK, Ipv4Addr::new(255, 255, 255, 0));
    m.option_ip(option::ROUTER, GW);
    m.option_u32(option::LEASE_TIME, 900);
    m.option(option::RELAY_AGENT_INFO, ri);
    let msg = m.finish();
    let mut ip = Vec::new();
    PacketBuilder::ipv4(KEA.octets(), GW.octets(), 64)
        .udp(67, 67)
        .write(&mut ip, &msg)
        .unwrap();
    let mut b = Vec::new();
    b.extend_from_slice(&CORE_MAC);
    b.extend_from_slice(&KEA_MAC);
    b.extend_from_slice(&[0x08, 0x00]);
    b.extend_from_slice(&ip);
    r.core
        .on_punt(r.now, 0, &Frame::new(Side::Core, &b).unwrap());
    r.pump();
}

#[test]
fn relay_mode_relays_to_the_server_and_the_session_starts_on_its_ack() {
    let mut s = settings();
    s.relay = Some(crate::dhcp::RelayConfig::new(GW, vec![KEA]));
    s.relay.as_mut().unwrap().port_names = vec!["access0".into()];
    let mut r = Rig::with(core(Some(s), Instant(1_000_000 * SEC)));
    r.discover();
    // Relayed to the server from the gateway's core port to the server's MAC: giaddr
    // set, one hop, option 82 with the line (circuit-id) and the MAC (remote-id).
    assert!(r.auth.is_empty(), "no login before the server's ACK");
    assert_eq!(r.relayed.len(), 1);
    let d = r.relayed[0].clone();
    assert_eq!((d.dst_mac, d.src_mac), (KEA_MAC, CORE_MAC));
    assert_eq!((d.src, d.dst, d.ports), (GW, KEA, (67, 67)));
    assert_eq!(d.message[0], op::BOOTREQUEST);
    assert_eq!(d.message[3], 1, "hops");
    assert_eq!(d.message[24..28], GW.octets(), "giaddr");
    assert_eq!(d.message_type(), mt::DISCOVER);
    let ri = d.option(option::RELAY_AGENT_INFO).unwrap();
    let id = crate::dhcp::wire::parse_relay_agent_info(&ri).unwrap();
    assert_eq!(id.circuit_id.as_deref(), Some(&b"access0.100.7"[..]));
    // The OFFER goes back to the client on its line, option 82 taken out.
    let leased = Ipv4Addr::new(10, 10, 0, 150);
    server_reply(&mut r, mt::OFFER, leased, &ri);
    assert_eq!(r.replies.len(), 1);
    let offer = r.replies[0].clone();
    assert_eq!(offer.message_type(), mt::OFFER);
    assert_eq!(
        (offer.dst_mac, offer.tags.clone()),
        (SUB_MAC, vec![(0x88a8, 100), (0x8100, 7)])
    );
    assert_eq!(offer.message[16..20], leased.octets());
    assert_eq!(offer.option(option::RELAY_AGENT_INFO), None);
    // REQUEST relayed, ACK back: the session's login (by MAC), then the session with
    // the server's address on the client's line.
    r.request(leased);
    assert_eq!(r.relayed.len(), 2);
    assert_eq!(r.relayed[1].message_type(), mt::REQUEST);
    server_reply(&mut r, mt::ACK, leased, &ri);
    assert_eq!(r.replies.last().unwrap().message_type(), mt::ACK);
    assert_eq!(r.auth.len(), 1);
    assert_eq!(
        r.auth[0].identifiers,
        vec![Identifier::Mac(MacAddr(SUB_MAC))]
    );
    r.accept(Authorization::default());
    assert_eq!(r.installed.len(), 1);
    let spec = r.installed[0];
    assert_eq!(spec.address, leased);
    assert_eq!(spec.access.vlans, qinq());
    assert_eq!(r.account.last().unwrap().status, AcctStatusType::Start);
    // RELEASE: relayed to the server, the session ends.
    r.release(leased);
    assert_eq!(r.relayed.last().unwrap().message_type(), mt::RELEASE);
    assert_eq!(r.removed, vec![(spec.id, DisconnectCause::UserRequest)]);
    assert_eq!(r.counter("dhcp_relayed_to_server"), 3);
}

/// Dual stack on IPoE, as BNG Blaster's IPoE clients start (issue 16 interop): DHCPv4
/// and DHCPv6 (IA_NA + IA_PD) at once, on a QinQ line, both families wanted.
mod dual_stack {
    use std::net::Ipv6Addr;

    use super::*;
    use crate::dhcpv6::wire::{
        duid_ll, ia, message, message_type as mt6, option as opt6, put_option,
    };
    use crate::gateway::dhcpv6::Dhcpv6Settings;
    use crate::gateway::ipv6::{Ipv6Settings, link_local};
    use crate::random::Seed;

    fn ipv6() -> Ipv6Settings {
        Ipv6Settings {
            pool: Some("2001:db8:100::/56".parse().unwrap()),
            access_addresses: Vec::new(),
            core_address: Some("2001:db8:ff::1".parse().unwrap()),
            next_hop: Some("2001:db8:ff::fe".parse().unwrap()),
            next_hop_mac: None,
            dns: Vec::new(),
            ra_interval: (Duration::from_secs(200), Duration::from_secs(600)),
            login_on_rs: true,
            seed: Seed::fixed([9; 32]),
            dhcpv6: Some(Dhcpv6Settings {
                delegated_pool: Some("2001:db8:200::/48".parse().unwrap()),
                delegated_length: 56,
                lease: Duration::from_secs(7200),
                rapid_commit: true,
                relay: None,
            }),
            routes: Vec::new(),
            connected: Vec::new(),
        }
    }

    fn rig() -> Rig {
        let now = Instant(1_000_000 * SEC);
        Rig::with(core_with(Some(settings()), Some(ipv6()), now))
    }

    const XID6: u32 = 0x00a1b2;

    /// A DHCPv6 SOLICIT with Rapid Commit, IA_NA and IA_PD from SUB_MAC's link-local
    /// address to All_DHCP_Relay_Agents_and_Servers, on the rig's line.
    fn solicit(r: &mut Rig) {
        let mut o = Vec::new();
        put_option(&mut o, opt6::CLIENT_ID, &duid_ll(SUB_MAC));
        put_option(&mut o, opt6::ELAPSED_TIME, &[0, 0]);
        put_option(&mut o, opt6::RAPID_COMMIT, &[]);
        put_option(&mut o, opt6::IA_NA, &ia(1, 0, 0, &[]));
        put_option(&mut o, opt6::IA_PD, &ia(2, 0, 0, &[]));
        let msg = message(mt6::SOLICIT, XID6, &o);
        let src = link_local(MacAddr(SUB_MAC));
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
        let mut ip = Vec::new();
        PacketBuilder::ipv6(src.octets(), dst.octets(), 1)
            .udp(546, 547)
            .write(&mut ip, &msg)
            .unwrap();
        let mut b = vec![0x33, 0x33, 0, 1, 0, 2];
        b.extend_from_slice(&SUB_MAC);
        for &(tpid, vid) in &r.tags {
            b.extend_from_slice(&tpid.to_be_bytes());
            b.extend_from_slice(&vid.to_be_bytes());
        }
        b.extend_from_slice(&[0x86, 0xdd]);
        b.extend_from_slice(&ip);
        r.core
            .on_punt(r.now, 0, &Frame::new(Side::Access, &b).unwrap());
        r.pump();
    }

    /// The DHCPv6 messages sent to the subscriber (RAs left out), read with etherparse:
    /// to SUB_MAC on the line's tags, UDP 547 to 546.
    fn dhcpv6_replies(r: &mut Rig) -> Vec<Vec<u8>> {
        std::mem::take(&mut r.v6)
            .into_iter()
            .filter_map(|b| {
                let p = SlicedPacket::from_ethernet(&b).unwrap();
                let Some(etherparse::LinkSlice::Ethernet2(eth)) = p.link.as_ref() else {
                    panic!("not Ethernet II")
                };
                assert_eq!(eth.destination(), SUB_MAC);
                let ids: Vec<u16> = p.vlan_ids().iter().map(|v| v.value()).collect();
                assert_eq!(ids, vec![100, 7]);
                match p.transport.as_ref() {
                    Some(TransportSlice::Udp(u)) => {
                        assert_eq!((u.source_port(), u.destination_port()), (547, 546));
                        Some(u.payload().to_vec())
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// The REPLY (Rapid Commit) to SOLICIT XID6: type, transaction id, and the IA_NA
    /// address `::1` of the session's /64 (2001:db8:100::/64, the pool's first).
    fn assert_reply(m: &[u8]) {
        assert_eq!(m[0], mt6::REPLY);
        assert_eq!(&m[1..4], &XID6.to_be_bytes()[1..]);
        let na: Ipv6Addr = "2001:db8:100::1".parse().unwrap();
        assert!(
            m.windows(16).any(|w| w == na.octets()),
            "IA_NA 2001:db8:100::1 in {m:02x?}"
        );
    }

    /// BNG Blaster sends the SOLICIT first: its login by MAC is under way when the
    /// DISCOVER comes. Before the fix the DISCOVER logged in a second time and its ACK
    /// installed a second session (another pool address) for the same line and MAC,
    /// IPv6 counted on one, IPv4 on the other, two Starts; the DHCPv6 RELEASE then left
    /// the IPv6 one up. Now the DISCOVER waits for that session and the lease joins it.
    #[test]
    fn a_discover_during_the_solicit_s_login_joins_its_session() {
        let mut r = rig();
        solicit(&mut r);
        r.discover();
        assert_eq!(r.auth.len(), 1, "one login for both families");
        assert!(r.replies.is_empty(), "no OFFER before the session");
        r.accept(Authorization::default());
        assert_eq!(r.installed.len(), 1);
        let spec = r.installed[0];
        assert_eq!(spec.mac, Some(MacAddr(SUB_MAC)));
        // The OFFER gives the session's address.
        let offer = r.replies.remove(0);
        assert_eq!(offer.message_type(), mt::OFFER);
        assert_eq!(offer.view().yiaddr(), spec.address);
        assert_eq!(offer.tags, vec![(0x88a8, 100), (0x8100, 7)]);
        let replies = dhcpv6_replies(&mut r);
        assert_eq!(replies.len(), 1);
        assert_reply(&replies[0]);
        r.request(spec.address);
        let ack = r.replies.remove(0);
        assert_eq!(ack.message_type(), mt::ACK);
        assert_eq!(ack.view().yiaddr(), spec.address);
        assert_eq!(r.installed.len(), 1, "no second session");
        assert_eq!(r.counter("dhcp_sessions_joined"), 1);
        assert_eq!(r.counter("dhcp_sessions_installed"), 0);
        let starts = r
            .account
            .iter()
            .filter(|a| a.status == AcctStatusType::Start)
            .count();
        assert_eq!(starts, 1);
        // The DHCPv4 RELEASE ends the one session.
        r.release(spec.address);
        assert_eq!(r.removed, vec![(spec.id, DisconnectCause::UserRequest)]);
    }

    /// The other order: the DISCOVER's login is under way when the SOLICIT comes; the
    /// SOLICIT starts no login of its own and is answered once the DHCPv4 session has
    /// its /64.
    #[test]
    fn a_solicit_during_the_discover_s_login_waits_for_its_session() {
        let mut r = rig();
        r.discover();
        solicit(&mut r);
        assert_eq!(r.auth.len(), 1, "one login for both families");
        assert!(dhcpv6_replies(&mut r).is_empty());
        r.accept(Authorization::default());
        r.request(FIRST);
        assert_eq!(r.installed.len(), 1);
        let replies = dhcpv6_replies(&mut r);
        assert_eq!(replies.len(), 1);
        assert_reply(&replies[0]);
        assert_eq!(r.counter("dhcp_sessions_installed"), 1);
        assert_eq!(r.counter("dhcp_sessions_joined"), 0);
    }
}

/// A subscriber's ARP request for the gateway, punted from its QinQ line (the fast path
/// answers it and passes a copy): read past both tags like every other punt, not counted
/// malformed (the ARP view once read one 802.1Q tag only).
#[test]
fn an_arp_request_from_a_qinq_line_is_read_past_both_tags() {
    let (mut r, spec) = Rig::up();
    let mut b = Vec::new();
    b.extend_from_slice(&[0xff; 6]);
    b.extend_from_slice(&SUB_MAC);
    for &(tpid, vid) in &r.tags {
        b.extend_from_slice(&tpid.to_be_bytes());
        b.extend_from_slice(&vid.to_be_bytes());
    }
    b.extend_from_slice(&[0x08, 0x06]);
    // Ethernet/IPv4 request, from the leased address for the gateway's.
    b.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    b.extend_from_slice(&SUB_MAC);
    b.extend_from_slice(&spec.address.octets());
    b.extend_from_slice(&[0; 6]);
    b.extend_from_slice(&GW.octets());
    r.core
        .on_punt(r.now, 0, &Frame::new(Side::Access, &b).unwrap());
    r.pump();
    assert_eq!(r.core.stats().punts_malformed, 0);
    let heard = r.core.neighbors();
    assert!(
        heard
            .iter()
            .any(|n| n.ip == spec.address && n.side == Side::Access),
        "{heard:?}"
    );
}
