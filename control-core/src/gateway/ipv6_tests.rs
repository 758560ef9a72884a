//! IPv6 through the core with a fake clock (V6-1): punted ND frames in (built with
//! etherparse), injected frames, commands and logins out, read back with etherparse and
//! the ND wire views.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use etherparse::{Icmpv6Type, PacketBuilder, SlicedPacket};
use tollgate_dataplane::session::{ClosedSession, DisconnectCause, SessionCounters};
use tollgate_dataplane::table::route6::{Hop6, Routes6};
use tollgate_dataplane::{
    Command, Event, ForwardingBuilder, Frame, Ipv6Forwarding, MacAddr, Side, SideConfig,
};

use super::aaa::{AaaPolicy, AuthAnswer, AuthRequest};
use super::ipv6::{Ipv6Settings, link_local};
use super::neighbor::Timing;
use super::pools::{Pool, Pools, Range};
use super::sessions::SessionRequest;
use super::{Core, CoreConfig, Output, Target};
use crate::authz::Authorization;
use crate::inet::ipv6::Prefix;
use crate::nd::wire::{Message, NdOption, Packet, icmp_type};
use crate::random::Seed;
use crate::time::{Instant, WallClock};

const ACC_MAC: MacAddr = MacAddr([0x02, 0xac, 0, 0, 0, 1]);
const CORE_MAC: MacAddr = MacAddr([0x02, 0xc0, 0, 0, 0, 1]);
const SUB_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x42]);
const RTR_MAC: MacAddr = MacAddr([0x02, 0xfe, 0, 0, 0, 1]);
const SEC: u64 = 1_000_000_000;
const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
const RTR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0xfe);

fn settings() -> Ipv6Settings {
    Ipv6Settings {
        pool: Some("2001:db8:100::/56".parse().unwrap()),
        access_addresses: Vec::new(),
        core_address: Some(GW6),
        next_hop: Some(RTR6),
        next_hop_mac: None,
        dns: vec!["2001:db8:ff::53".parse().unwrap()],
        ra_interval: (Duration::from_secs(200), Duration::from_secs(600)),
        login_on_rs: true,
        seed: Seed::fixed([9; 32]),
        dhcpv6: None,
        routes: Vec::new(),
        connected: Vec::new(),
    }
}

struct Rig {
    core: Core,
    now: Instant,
    frames: Vec<Frame>,
    commands: Vec<Command>,
    auth: Vec<AuthRequest>,
    published: Vec<Ipv6Forwarding>,
    /// The IPv6 route tables published, in order.
    routes6: Vec<Routes6>,
    /// Lease-file changes (DHCPv6 bindings), in order.
    leases: Vec<super::dhcp::LeaseChange>,
    accounts: Vec<crate::radius::attrs::AcctRecord>,
    /// DHCPv6 relay mode: the RELAY-FORWs for the servers, in order.
    to_servers: Vec<crate::dhcpv6::ToServer>,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(settings())
    }

    fn with(settings: Ipv6Settings) -> Rig {
        Rig::at(settings, Instant(SEC))
    }

    /// A core started at `now` (a restart later than another rig's).
    fn at(settings: Ipv6Settings, now: Instant) -> Rig {
        let routes6 = settings.routes6();
        let fwd = ForwardingBuilder::new(
            SideConfig {
                mac: ACC_MAC,
                address: Ipv4Addr::new(10, 10, 0, 1),
                prefix_len: 24,
            },
            SideConfig {
                mac: CORE_MAC,
                address: Ipv4Addr::new(192, 0, 2, 1),
                prefix_len: 24,
            },
        )
        .routes6(routes6)
        .build()
        .unwrap();
        let core = Core::new(
            now,
            Arc::new(fwd),
            CoreConfig {
                arp: Timing::default(),
                static_neighbors: Vec::new(),
                workers: 1,
                service_names: Vec::new(),
                clock: WallClock::UNIX,
                aaa: AaaPolicy {
                    pools: Pools {
                        pools: vec![Pool {
                            name: "v4".into(),
                            ranges: vec![Range::new(
                                Ipv4Addr::new(100, 64, 0, 1),
                                Ipv4Addr::new(100, 64, 0, 10),
                                None,
                            )],
                        }],
                        nodes: Vec::new(),
                    },
                    ..AaaPolicy::default()
                },
                l2tp: None,
                pppoe: None,
                lns: None,
                dhcp: None,
                ipv6: Some(settings),
            },
        );
        let mut r = Rig {
            core,
            now,
            frames: Vec::new(),
            commands: Vec::new(),
            auth: Vec::new(),
            published: Vec::new(),
            routes6: Vec::new(),
            leases: Vec::new(),
            accounts: Vec::new(),
            to_servers: Vec::new(),
        };
        r.drain();
        r
    }

    fn drain(&mut self) {
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Inject(_, f) => self.frames.push(*f),
                Output::Command(Target::Worker(_) | Target::All, c) => self.commands.push(c),
                Output::Authenticate(a) => self.auth.push(a),
                Output::Publish(f) => {
                    self.published.push(f.ipv6.clone());
                    self.routes6.push(f.routes6.clone());
                }
                Output::Account(a) => self.accounts.push(a),
                Output::Lease(l) => self.leases.push(l),
                Output::Dhcpv6ToServer(t) => self.to_servers.push(t),
                _ => {}
            }
        }
    }

    fn punt(&mut self, side: Side, frame: &[u8]) {
        self.core
            .on_punt(self.now, 0, &Frame::new(side, frame).unwrap());
        self.drain();
    }

    fn tick(&mut self) {
        self.core.tick(self.now);
        self.drain();
    }

    fn take_frames(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.frames)
    }
}

/// An ICMPv6 ND frame from `src_mac`/`src` to `dst_mac`/`dst` of `ty`, body `body`.
fn nd_frame(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ty: u8,
    body: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv6(src.octets(), dst.octets(), 255)
        .icmpv6(Icmpv6Type::Unknown {
            type_u8: ty,
            code_u8: 0,
            bytes5to8: [0; 4],
        })
        .write(&mut f, body)
        .unwrap();
    f
}

/// The Ethernet MACs, IPv6 addresses and ICMPv6 bytes of an injected frame.
fn read(f: &Frame) -> (MacAddr, MacAddr, Ipv6Addr, Ipv6Addr, Vec<u8>) {
    let p = SlicedPacket::from_ethernet(f.bytes()).unwrap();
    let eth = match p.link.unwrap() {
        etherparse::LinkSlice::Ethernet2(e) => e,
        _ => panic!("not Ethernet II"),
    };
    let ip = match p.net.unwrap() {
        etherparse::NetSlice::Ipv6(ip) => ip,
        _ => panic!("not IPv6"),
    };
    assert_eq!(ip.header().hop_limit(), 255);
    let icmp = ip.payload().payload.to_vec();
    (
        MacAddr(eth.destination()),
        MacAddr(eth.source()),
        ip.header().source_addr(),
        ip.header().destination_addr(),
        icmp,
    )
}

/// The prefixes of an RA's Prefix Information options, with their lifetimes.
fn ra_prefixes(icmp: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Vec<(Prefix, u32)> {
    let p = Packet::new_checked(icmp).unwrap();
    assert!(p.checksum_ok(src, dst));
    assert_eq!(p.msg_type(), icmp_type::ROUTER_ADVERT);
    let m = Message::parse(&p).unwrap();
    m.options()
        .map_while(Result::ok)
        .filter_map(|o| match o {
            NdOption::PrefixInfo { prefix, valid, .. } => Some((prefix, valid)),
            _ => None,
        })
        .collect()
}

fn sub_ll() -> Ipv6Addr {
    link_local(SUB_MAC)
}

#[test]
fn an_ipv4_session_gets_a_64_and_its_ras() {
    let mut r = Rig::new();
    let id = r
        .core
        .open_session(
            r.now,
            SessionRequest {
                user: "alice".into(),
                address: Ipv4Addr::new(100, 64, 0, 5),
                mac: Some(SUB_MAC),
                channel: None,
                services: Default::default(),
                bandwidth: Default::default(),
                limits: Default::default(),
                max_flows: 0,
            },
        )
        .unwrap();
    r.drain();
    let prefix = 0x2001_0db8_0100_0000u64;
    assert!(r.commands.iter().any(|c| matches!(
        c,
        Command::SessionPrefix6 { id: i, prefix: Some(p) } if *i == id && *p == prefix
    )));
    assert_eq!(
        r.core.ipv6().unwrap().prefix_of(id).unwrap().to_string(),
        "2001:db8:100::/64"
    );
    // The RA went to the subscriber's MAC at once, with its /64 only.
    let frames = r.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].side, Side::Access);
    let (dmac, smac, src, dst, icmp) = read(&frames[0]);
    assert_eq!((dmac, smac), (SUB_MAC, ACC_MAC));
    assert_eq!(src, link_local(ACC_MAC));
    assert_eq!(dst, "ff02::1".parse::<Ipv6Addr>().unwrap());
    let prefixes = ra_prefixes(&icmp, src, dst);
    assert_eq!(prefixes.len(), 1);
    assert_eq!(prefixes[0].0.to_string(), "2001:db8:100::/64");
    assert!(prefixes[0].1 > 0);
    // Its RS is answered with the same /64, to its link-local address now.
    let rs = nd_frame(
        SUB_MAC,
        MacAddr([0x33, 0x33, 0, 0, 0, 2]),
        sub_ll(),
        "ff02::2".parse().unwrap(),
        133,
        &[],
    );
    r.now = Instant(10 * SEC);
    r.punt(Side::Access, &rs);
    let frames = r.take_frames();
    assert_eq!(frames.len(), 1);
    let (dmac, _, src, dst, icmp) = read(&frames[0]);
    assert_eq!((dmac, dst), (SUB_MAC, sub_ll()));
    assert_eq!(
        ra_prefixes(&icmp, src, dst)[0].0.to_string(),
        "2001:db8:100::/64"
    );
    assert!(
        r.auth.is_empty(),
        "no login for a subscriber with a session"
    );
    // Its NS for the gateway's link-local address is answered.
    let gw_ll = link_local(ACC_MAC);
    let ns = nd_frame(
        SUB_MAC,
        ACC_MAC,
        sub_ll(),
        gw_ll,
        135,
        &[gw_ll.octets().as_slice(), &[1, 1], &SUB_MAC.0].concat(),
    );
    r.punt(Side::Access, &ns);
    let frames = r.take_frames();
    assert_eq!(frames.len(), 1);
    let (dmac, smac, src, dst, icmp) = read(&frames[0]);
    assert_eq!((dmac, smac, src, dst), (SUB_MAC, ACC_MAC, gw_ll, sub_ll()));
    let p = Packet::new_checked(&icmp[..]).unwrap();
    assert_eq!(p.msg_type(), icmp_type::NEIGHBOR_ADVERT);
    assert!(p.checksum_ok(src, dst));
    // The session ends: a final RA (valid lifetime 0) and the /64 goes back.
    r.core.on_event(
        r.now,
        0,
        Event::SessionClosed(ClosedSession {
            id,
            user: 1,
            channel: 0,
            address: Ipv4Addr::new(100, 64, 0, 5),
            cause: DisconnectCause::AdminReset,
            counters: SessionCounters::default(),
            started: Instant(SEC),
            stopped: r.now,
        }),
    );
    r.drain();
    let frames = r.take_frames();
    assert_eq!(frames.len(), 1);
    let (_, _, src, dst, icmp) = read(&frames[0]);
    assert_eq!(ra_prefixes(&icmp, src, dst)[0].1, 0);
    assert!(r.core.ipv6().unwrap().prefix_of(id).is_none());
    assert_eq!(r.core.ipv6().unwrap().stats().prefixes_released, 1);
}

#[test]
fn an_unknown_mac_s_rs_logs_it_in_by_mac_and_the_session_gets_a_64() {
    let mut r = Rig::new();
    let rs = nd_frame(
        SUB_MAC,
        MacAddr([0x33, 0x33, 0, 0, 0, 2]),
        sub_ll(),
        "ff02::2".parse().unwrap(),
        133,
        &[],
    );
    r.punt(Side::Access, &rs);
    // A generic RA (no prefix) answers at once; the login asks the store by MAC.
    let frames = r.take_frames();
    assert_eq!(frames.len(), 1);
    let (_, _, src, dst, icmp) = read(&frames[0]);
    assert!(ra_prefixes(&icmp, src, dst).is_empty());
    assert_eq!(r.auth.len(), 1);
    let a = r.auth.remove(0);
    assert_eq!(a.calling_station.as_deref(), Some("02:00:00:00:00:42"));
    // The RS again within the retry time starts no second login.
    r.now = Instant(5 * SEC);
    r.punt(Side::Access, &rs);
    assert!(r.auth.is_empty());
    r.take_frames();
    r.core.on_auth(
        r.now,
        a.login,
        AuthAnswer::Accept {
            user: "v6-first".into(),
            authorization: Box::new(Authorization::default()),
        },
    );
    r.drain();
    // One session for both families: an IPv4 address from the pool, and a /64.
    let spec = r
        .commands
        .iter()
        .find_map(|c| match c {
            Command::SessionAdd(s) => Some(*s),
            _ => None,
        })
        .expect("the session is installed");
    assert_eq!(spec.mac, Some(SUB_MAC));
    assert_eq!(spec.address, Ipv4Addr::new(100, 64, 0, 1));
    assert!(r.commands.iter().any(|c| matches!(
        c,
        Command::SessionPrefix6 { id, prefix: Some(_) } if *id == spec.id
    )));
    let frames = r.take_frames();
    assert_eq!(frames.len(), 1, "its RA with the /64");
    let (dmac, _, src, dst, icmp) = read(&frames[0]);
    assert_eq!(dmac, SUB_MAC);
    assert_eq!(
        ra_prefixes(&icmp, src, dst)[0].0.to_string(),
        "2001:db8:100::/64"
    );
}

/// An IPv6-first subscriber on an 802.1Q line (ACC-4): RADIUS sees the line, the
/// session is installed on it and its RA goes out tagged.
#[test]
fn an_rs_on_a_vlan_line_logs_in_a_session_on_that_line() {
    let mut r = Rig::new();
    let mut rs = nd_frame(
        SUB_MAC,
        MacAddr([0x33, 0x33, 0, 0, 0, 2]),
        sub_ll(),
        "ff02::2".parse().unwrap(),
        133,
        &[],
    );
    rs.splice(12..12, [0x81, 0x00, 0x00, 30]);
    r.punt(Side::Access, &rs);
    let frames = r.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        frames[0].bytes()[12..16],
        [0x81, 0x00, 0x00, 30],
        "tagged RA"
    );
    let a = r.auth.remove(0);
    let line = a.line.clone().expect("the line goes to RADIUS");
    assert_eq!(line.nas_port_id, "access.30");
    r.core.on_auth(
        r.now,
        a.login,
        AuthAnswer::Accept {
            user: "v6-first".into(),
            authorization: Box::new(Authorization::default()),
        },
    );
    r.drain();
    let spec = r
        .commands
        .iter()
        .find_map(|c| match c {
            Command::SessionAdd(s) => Some(*s),
            _ => None,
        })
        .expect("the session is installed");
    assert_eq!(
        spec.access.vlans,
        tollgate_dataplane::session::Vlans {
            outer: Some(tollgate_dataplane::session::VlanTag {
                tpid: 0x8100,
                vid: 30
            }),
            inner: None,
        }
    );
    let frames = r.take_frames();
    assert_eq!(frames.len(), 1, "its RA with the /64");
    assert_eq!(frames[0].bytes()[12..16], [0x81, 0x00, 0x00, 30]);
}

#[test]
fn the_core_next_hop_is_solicited_learnt_and_published() {
    let mut r = Rig::new();
    r.tick();
    let frames = r.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].side, Side::Core);
    let (dmac, smac, src, dst, icmp) = read(&frames[0]);
    assert_eq!(smac, CORE_MAC);
    assert_eq!(dmac, MacAddr([0x33, 0x33, 0xff, 0, 0, 0xfe]));
    assert_eq!((src, dst), (GW6, "ff02::1:ff00:fe".parse().unwrap()));
    let p = Packet::new_checked(&icmp[..]).unwrap();
    assert_eq!(p.msg_type(), icmp_type::NEIGHBOR_SOLICIT);
    assert!(p.checksum_ok(src, dst));
    // Again a second later while unanswered.
    r.now = Instant(2 * SEC);
    r.tick();
    assert_eq!(r.take_frames().len(), 1);
    // The router's NS for our core address: answered, and its MAC learnt and published.
    let ns = nd_frame(
        RTR_MAC,
        MacAddr([0x33, 0x33, 0xff, 0, 0, 1]),
        RTR6,
        "ff02::1:ff00:1".parse().unwrap(),
        135,
        &[GW6.octets().as_slice(), &[1, 1], &RTR_MAC.0].concat(),
    );
    r.punt(Side::Core, &ns);
    assert_eq!(r.published.len(), 1);
    assert_eq!(r.published[0].next_hop_mac, Some(RTR_MAC));
    assert_eq!(r.core.ipv6().unwrap().next_hop_mac(), Some(RTR_MAC));
    let frames = r.take_frames();
    assert_eq!(frames.len(), 1);
    let (dmac, smac, src, dst, icmp) = read(&frames[0]);
    assert_eq!((dmac, smac, src, dst), (RTR_MAC, CORE_MAC, GW6, RTR6));
    assert_eq!(
        Packet::new_checked(&icmp[..]).unwrap().msg_type(),
        icmp_type::NEIGHBOR_ADVERT
    );
    // No more solicitations once resolved.
    r.now = Instant(10 * SEC);
    r.tick();
    assert!(r.take_frames().is_empty());
}

/// The target of an injected Neighbor Solicitation, checked: from the core MAC and
/// `core_address` to the target's solicited-node group, checksum right.
fn ns_target(f: &Frame) -> Ipv6Addr {
    assert_eq!(f.side, Side::Core);
    let (dmac, smac, src, dst, icmp) = read(f);
    let p = Packet::new_checked(&icmp[..]).unwrap();
    assert_eq!(p.msg_type(), icmp_type::NEIGHBOR_SOLICIT);
    assert!(p.checksum_ok(src, dst));
    let target = Ipv6Addr::from(<[u8; 16]>::try_from(&icmp[8..24]).unwrap());
    assert_eq!(smac, CORE_MAC);
    assert_eq!(src, GW6);
    assert_eq!(dst, crate::inet::ipv6::solicited_node(target));
    let t = target.octets();
    assert_eq!(dmac, MacAddr([0x33, 0x33, 0xff, t[13], t[14], t[15]]));
    target
}

/// An NA from `ip` at `mac` for itself (solicited, override, with its link-layer
/// address), to the gateway's core address.
fn na_from(ip: Ipv6Addr, mac: MacAddr) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(mac.0, CORE_MAC.0)
        .ipv6(ip.octets(), GW6.octets(), 255)
        .icmpv6(Icmpv6Type::Unknown {
            type_u8: 136,
            code_u8: 0,
            bytes5to8: [0x60, 0, 0, 0],
        })
        .write(&mut f, &[ip.octets().as_slice(), &[2, 1], &mac.0].concat())
        .unwrap();
    f
}

/// Issue 16 item 4: IPv6 routes through two next hops besides the default, and a
/// connected core prefix whose hosts are solicited when a worker asks. Each next hop is
/// solicited every second until its NA, then published in the route table; a connected
/// host three times, then given up until asked again.
#[test]
fn route_next_hops_and_connected_hosts_are_resolved_by_ns() {
    let r2: Ipv6Addr = "fe80::2".parse().unwrap();
    let r3: Ipv6Addr = "2001:db8:ff::3".parse().unwrap();
    let host: Ipv6Addr = "2001:db8:ff::10".parse().unwrap();
    let r2_mac = MacAddr([0x02, 0xfe, 0, 0, 0, 2]);
    let r3_mac = MacAddr([0x02, 0xfe, 0, 0, 0, 3]);
    let host_mac = MacAddr([0x02, 0x5e, 0, 0, 0, 0x10]);
    let mut s = settings();
    s.routes = vec![
        ("2001:db8:500::/48".parse().unwrap(), r2),
        ("2001:db8:600::/48".parse().unwrap(), r3),
        // Through the default next hop too: one NS for both.
        ("2001:db8:700::/48".parse().unwrap(), RTR6),
    ];
    s.connected = vec!["2001:db8:ff::/64".parse().unwrap()];
    let mut r = Rig::with(s);
    r.tick();
    let mut got: Vec<Ipv6Addr> = r.take_frames().iter().map(ns_target).collect();
    got.sort_unstable();
    assert_eq!(got, vec![r3, RTR6, r2]);
    // The next hops answer: each learnt once and published.
    r.now = Instant(SEC + SEC / 2);
    r.punt(Side::Core, &na_from(r2, r2_mac));
    r.punt(Side::Core, &na_from(r3, r3_mac));
    r.punt(Side::Core, &na_from(r3, r3_mac));
    assert_eq!(r.routes6.len(), 2);
    let t = r.routes6.last().unwrap().clone();
    let dst = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    assert_eq!(t.lookup(dst("2001:db8:500:1::1")), Some(Hop6::Mac(r2_mac)));
    assert_eq!(t.lookup(dst("2001:db8:600::1")), Some(Hop6::Mac(r3_mac)));
    assert_eq!(
        t.lookup(dst("2001:db8:700::1")),
        Some(Hop6::Unresolved {
            neighbor: RTR6,
            connected: false
        })
    );
    assert_eq!(t.lookup(dst("2001:db8:800::1")), None);
    // Only the default next hop is still solicited.
    r.now = Instant(2 * SEC);
    r.tick();
    let got: Vec<Ipv6Addr> = r.take_frames().iter().map(ns_target).collect();
    assert_eq!(got, vec![RTR6]);
    // A worker asks for a connected host: solicited at once, then twice more a second
    // apart, then given up; a repeated ask meanwhile sends nothing.
    r.core.on_event(r.now, 0, Event::Resolve6 { ip: host });
    r.core.on_event(r.now, 0, Event::Resolve6 { ip: host });
    // Outside every connected prefix: not solicited.
    r.core.on_event(
        r.now,
        0,
        Event::Resolve6 {
            ip: dst("2001:db8:500::1"),
        },
    );
    r.drain();
    let got: Vec<Ipv6Addr> = r.take_frames().iter().map(ns_target).collect();
    assert_eq!(got, vec![host]);
    for k in 3..=5 {
        r.now = Instant(k * SEC);
        r.tick();
        let got: Vec<Ipv6Addr> = r
            .take_frames()
            .iter()
            .map(ns_target)
            .filter(|t| *t != RTR6)
            .collect();
        let want = if k < 5 { vec![host] } else { vec![] };
        assert_eq!(got, want, "second {k}");
    }
    let counter = |r: &Rig, k: &str| {
        r.core
            .ipv6()
            .unwrap()
            .counters()
            .into_iter()
            .find(|(n, _)| n == k)
            .unwrap()
            .1
    };
    assert_eq!(counter(&r, "ipv6_neighbor_failed"), 1);
    // Asked again, it answers this time: published; the default next hop answers too.
    r.core.on_event(r.now, 0, Event::Resolve6 { ip: host });
    r.drain();
    assert_eq!(
        r.take_frames().iter().map(ns_target).collect::<Vec<_>>(),
        vec![host]
    );
    r.punt(Side::Core, &na_from(host, host_mac));
    r.punt(Side::Core, &na_from(RTR6, RTR_MAC));
    let t = r.routes6.last().unwrap();
    assert_eq!(t.lookup(host), Some(Hop6::Mac(host_mac)));
    assert_eq!(t.lookup(dst("2001:db8:700::1")), Some(Hop6::Mac(RTR_MAC)));
    assert_eq!(r.published.last().unwrap().next_hop_mac, Some(RTR_MAC));
    // Resolved everything: nothing more is solicited.
    r.take_frames();
    r.now = Instant(30 * SEC);
    r.tick();
    assert!(r.take_frames().iter().all(|f| f.side != Side::Core));
    assert_eq!(counter(&r, "ipv6_neighbor_learned"), 4);
    // r2 and r3 once, RTR6 (one NS shared with the default) at seconds 1 to 5, the
    // host 3 + 1 times.
    assert_eq!(counter(&r, "ipv6_neighbor_solicits"), 2 + 5 + 3 + 1);
}

/// Issue 16: learnt core-side neighbours are probed again, as ARP's are. A route's next
/// hop learnt at 1.5 s is REACHABLE for `[arp] reachable` (300 s); then the gateway
/// probes it with a unicast NS to its MAC (byte for byte), `retries` (3) a second apart,
/// its MAC still in use; an NA confirms it. Silent through a later round, it is lost:
/// its MAC leaves the published route table, and it is solicited (multicast) again.
#[test]
fn learnt_neighbours_are_probed_by_unicast_ns_and_withdrawn_when_silent() {
    let r2: Ipv6Addr = "fe80::2".parse().unwrap();
    let r2_mac = MacAddr([0x02, 0xfe, 0, 0, 0, 2]);
    let mut s = settings();
    s.next_hop_mac = Some(RTR_MAC);
    s.routes = vec![("2001:db8:500::/48".parse().unwrap(), r2)];
    let mut r = Rig::with(s);
    r.tick();
    assert_eq!(
        r.take_frames().iter().map(ns_target).collect::<Vec<_>>(),
        vec![r2]
    );
    r.now = Instant(SEC + SEC / 2);
    r.punt(Side::Core, &na_from(r2, r2_mac));
    let dst = "2001:db8:500::1".parse::<Ipv6Addr>().unwrap();
    assert_eq!(
        r.routes6.last().unwrap().lookup(dst),
        Some(Hop6::Mac(r2_mac))
    );
    let published = r.routes6.len();
    assert_eq!(
        r.core.poll_timeout().map(|t| t.0),
        Some(301 * SEC + SEC / 2),
        "nothing before the reachable time runs out"
    );
    r.now = Instant(301 * SEC);
    r.tick();
    assert!(r.take_frames().is_empty());
    // The probe: from the core address and MAC to r2 itself at its MAC.
    let mut want = Vec::new();
    PacketBuilder::ethernet2(CORE_MAC.0, r2_mac.0)
        .ipv6(GW6.octets(), r2.octets(), 255)
        .icmpv6(Icmpv6Type::Unknown {
            type_u8: 135,
            code_u8: 0,
            bytes5to8: [0; 4],
        })
        .write(
            &mut want,
            &[r2.octets().as_slice(), &[1, 1], &CORE_MAC.0].concat(),
        )
        .unwrap();
    let counter = |r: &Rig, k: &str| {
        r.core
            .ipv6()
            .unwrap()
            .counters()
            .into_iter()
            .find(|(n, _)| n == k)
            .unwrap()
            .1
    };
    for k in 0..2 {
        r.now = Instant((301 + k) * SEC + SEC / 2);
        r.tick();
        let f = r.take_frames();
        assert_eq!(f.len(), 1, "probe {k}");
        assert_eq!(f[0].side, Side::Core);
        assert_eq!(f[0].bytes(), &want[..], "probe {k} byte for byte");
    }
    assert_eq!(
        r.routes6.len(),
        published,
        "its MAC stays in use while probed"
    );
    // It answers the second probe: confirmed, no third probe, nothing published.
    r.punt(Side::Core, &na_from(r2, r2_mac));
    assert_eq!(counter(&r, "ipv6_neighbor_confirmed"), 1);
    r.now = Instant(303 * SEC + SEC / 2);
    r.tick();
    assert!(r.take_frames().is_empty());
    assert_eq!(r.routes6.len(), published);
    // The next round (300 s after the answer): three probes unanswered, then lost.
    for k in 0..3 {
        r.now = Instant((602 + k) * SEC + SEC / 2);
        r.tick();
        assert_eq!(
            r.take_frames()
                .iter()
                .map(|f| f.bytes().to_vec())
                .collect::<Vec<_>>(),
            vec![want.clone()],
            "second {}",
            602 + k
        );
    }
    r.now = Instant(605 * SEC + SEC / 2);
    r.tick();
    let t = r.routes6.last().unwrap();
    assert_eq!(
        r.routes6.len(),
        published + 1,
        "withdrawn in a new snapshot"
    );
    assert_eq!(
        t.lookup(dst),
        Some(Hop6::Unresolved {
            neighbor: r2,
            connected: false
        })
    );
    // Resolved again from the start: multicast NS, at once and every second.
    assert_eq!(
        r.take_frames().iter().map(ns_target).collect::<Vec<_>>(),
        vec![r2]
    );
    assert_eq!(counter(&r, "ipv6_neighbor_probes"), 5);
    assert_eq!(counter(&r, "ipv6_neighbor_lost"), 1);
    r.now = Instant(606 * SEC + SEC / 2);
    r.punt(Side::Core, &na_from(r2, r2_mac));
    assert_eq!(
        r.routes6.last().unwrap().lookup(dst),
        Some(Hop6::Mac(r2_mac))
    );
}

#[test]
fn a_session_without_a_mac_gets_its_ras_once_the_mac_is_learnt() {
    let mut r = Rig::new();
    let id = r
        .core
        .open_session(
            r.now,
            SessionRequest {
                user: "bob".into(),
                address: Ipv4Addr::new(100, 64, 0, 6),
                mac: None,
                channel: None,
                services: Default::default(),
                bandwidth: Default::default(),
                limits: Default::default(),
                max_flows: 0,
            },
        )
        .unwrap();
    r.drain();
    // The /64 is attached at once; no RA while the MAC is unknown.
    assert!(r.commands.iter().any(|c| matches!(
        c,
        Command::SessionPrefix6 { id: i, prefix: Some(_) } if *i == id
    )));
    assert!(r.take_frames().is_empty());
    r.core
        .on_event(r.now, 0, Event::SessionMac { id, mac: SUB_MAC });
    r.drain();
    let frames = r.take_frames();
    assert_eq!(frames.len(), 1);
    let (dmac, _, src, dst, icmp) = read(&frames[0]);
    assert_eq!(dmac, SUB_MAC);
    assert_eq!(
        ra_prefixes(&icmp, src, dst)[0].0.to_string(),
        "2001:db8:100::/64"
    );
    // A second session gets the next /64.
    let id2 = r
        .core
        .open_session(
            r.now,
            SessionRequest {
                user: "carol".into(),
                address: Ipv4Addr::new(100, 64, 0, 7),
                mac: Some(MacAddr([0x02, 0, 0, 0, 0, 0x43])),
                channel: None,
                services: Default::default(),
                bandwidth: Default::default(),
                limits: Default::default(),
                max_flows: 0,
            },
        )
        .unwrap();
    assert_eq!(
        r.core.ipv6().unwrap().prefix_of(id2).unwrap().to_string(),
        "2001:db8:100:1::/64"
    );
}

/// DHCPv6 (IA_NA, IA_PD) on top of this rig.
#[path = "dhcpv6_tests.rs"]
mod dhcpv6_tests;
