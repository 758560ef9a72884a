//! DHCPv4 client messages on the access side through one worker on memory ports (issue
//! 16, ACC-3): DISCOVERs (0.0.0.0 to 255.255.255.255, untagged and on VLAN lines) and
//! unicast renewals and releases go up the punt ring whole and byte for byte, counted as
//! `dhcp_client`, instead of being dropped as martians; the same from the core side is
//! not punted, but a server's reply to the relay (giaddr) is (`dhcp_server`) in relay
//! mode only; with no DHCP server or relay configured nothing is punted; a reply the
//! control plane injects goes out of the access port unchanged.

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;
use tollgate_dataplane::msg::ControlEnds;
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    DhcpPunt, DropReason, ForwardingBuilder, Frame, HeapPool, MacAddr, RingSizes, Side, SideConfig,
    Worker, WorkerConfig, WorkerCounters, worker_rings,
};
use tollgate_testkit::lab::*;

const POOL: usize = 256;

struct Rig {
    worker: Worker<MemoryPort>,
    access: MemoryPeer,
    core: MemoryPeer,
    ctl: ControlEnds,
    now: Instant,
    _publisher: Publisher<tollgate_dataplane::Forwarding>,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(DhcpPunt::Server)
    }

    fn with(dhcp: DhcpPunt) -> Rig {
        let fwd = ForwardingBuilder::new(
            SideConfig {
                mac: ACC_MAC,
                address: GW_ACC,
                prefix_len: 24,
            },
            SideConfig {
                mac: CORE_MAC,
                address: GW_CORE,
                prefix_len: 24,
            },
        )
        .dhcp(dhcp)
        .build()
        .unwrap();
        let publisher = Publisher::new(fwd);
        let (w, ctl) = worker_rings(RingSizes::default());
        let (a, access) = MemoryPort::with_peer(256);
        let (c, core) = MemoryPort::with_peer(256);
        let worker = Worker::new(
            WorkerConfig::default(),
            a,
            c,
            HeapPool::new(POOL),
            publisher.reader(),
            w,
        );
        Rig {
            worker,
            access,
            core,
            ctl,
            now: Instant(1_000_000_000),
            _publisher: publisher,
        }
    }

    fn send(&mut self, side: Side, frame: &[u8]) {
        let peer = match side {
            Side::Access => &mut self.access,
            Side::Core => &mut self.core,
        };
        assert!(peer.send(frame.to_vec()));
        self.worker.poll(self.now);
    }

    fn counters(&mut self) -> WorkerCounters {
        self.worker.report(0, self.now).counters
    }

    fn punted(&mut self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.ctl.punt.pop())
            .map(|f| {
                assert_eq!(f.side, Side::Access);
                f.bytes().to_vec()
            })
            .collect()
    }
}

/// A DHCP-sized UDP datagram from `src`:68 to `dst`:`dport` in an Ethernet frame from
/// SUB_MAC to `dst_mac`, with `tags` (TPID, VID) outer first.
fn dhcp_frame(
    dst_mac: MacAddr,
    tags: &[(u16, u16)],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    dport: u16,
) -> Vec<u8> {
    let mut ip = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .udp(68, dport)
        .write(&mut ip, &[0x5a; 300])
        .unwrap();
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac.0);
    f.extend_from_slice(&SUB_MAC.0);
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(&ip);
    f
}

const BCAST: MacAddr = MacAddr([0xff; 6]);

#[test]
fn discovers_and_renewals_are_punted_whole_with_their_tags() {
    let mut r = Rig::new();
    let any = Ipv4Addr::UNSPECIFIED;
    let frames = [
        dhcp_frame(BCAST, &[], any, Ipv4Addr::BROADCAST, 67),
        dhcp_frame(BCAST, &[(0x8100, 100)], any, Ipv4Addr::BROADCAST, 67),
        dhcp_frame(
            BCAST,
            &[(0x88a8, 200), (0x8100, 300)],
            any,
            Ipv4Addr::BROADCAST,
            67,
        ),
        // RENEWING: unicast to the gateway from the leased address.
        dhcp_frame(ACC_MAC, &[], SUB, GW_ACC, 67),
        // REBINDING: broadcast from the leased address.
        dhcp_frame(BCAST, &[], SUB, Ipv4Addr::BROADCAST, 67),
        // Relay mode: a RELEASE unicast to the external server that leased.
        dhcp_frame(ACC_MAC, &[], SUB, Ipv4Addr::new(192, 0, 2, 20), 67),
    ];
    for f in &frames {
        r.send(Side::Access, f);
    }
    assert_eq!(r.punted(), frames.to_vec());
    let c = r.counters();
    assert_eq!((c.punted, c.dhcp_client), (6, 6));
    assert_eq!(c.total_drops(), 0);
    assert!(r.access.drain().is_empty() && r.core.drain().is_empty());
}

#[test]
fn other_udp_and_the_core_side_are_not_punted() {
    let mut r = Rig::new();
    let any = Ipv4Addr::UNSPECIFIED;
    // From the core side, a DISCOVER-shaped frame is a martian.
    r.send(
        Side::Core,
        &dhcp_frame(BCAST, &[], any, Ipv4Addr::BROADCAST, 67),
    );
    // From the access side: to the client port (a martian from 0.0.0.0), and UDP from
    // port 67 to another port of another host (routed, waiting for its MAC).
    r.send(
        Side::Access,
        &dhcp_frame(BCAST, &[], any, Ipv4Addr::BROADCAST, 68),
    );
    r.send(
        Side::Access,
        &dhcp_frame(ACC_MAC, &[], SUB, Ipv4Addr::new(192, 0, 2, 10), 5001),
    );
    assert!(r.punted().is_empty());
    let c = r.counters();
    assert_eq!((c.punted, c.dhcp_client, c.dhcp_server), (0, 0, 0));
    assert_eq!(c.dropped(DropReason::Ipv4MartianSource), 2);
    assert_eq!(c.total_drops(), 2);
    assert_eq!(c.held, 1);
}

/// Kea at 192.0.2.20 answering the relay: UDP 67 to giaddr, the access address.
fn server_reply() -> Vec<u8> {
    let mut ip = Vec::new();
    PacketBuilder::ipv4([192, 0, 2, 20], GW_ACC.octets(), 64)
        .udp(67, 67)
        .write(&mut ip, &[0x5a; 300])
        .unwrap();
    let mut f = Vec::new();
    f.extend_from_slice(&CORE_MAC.0);
    f.extend_from_slice(&SRV_MAC.0);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f
}

#[test]
fn relay_mode_server_replies_to_the_access_address_are_punted_from_the_core_side() {
    let mut r = Rig::with(DhcpPunt::Relay);
    let f = server_reply();
    r.send(Side::Core, &f);
    let punted: Vec<Vec<u8>> = std::iter::from_fn(|| r.ctl.punt.pop())
        .map(|p| {
            assert_eq!(p.side, Side::Core);
            p.bytes().to_vec()
        })
        .collect();
    assert_eq!(punted, vec![f]);
    let c = r.counters();
    assert_eq!((c.punted, c.dhcp_server, c.dhcp_client), (1, 1, 0));
}

/// Without a DHCP server or relay, DHCP is plain IPv4: a DISCOVER is a martian (as before
/// issue 16) and a server's reply to the access address is not the gateway's business;
/// in server mode that reply is not punted either.
#[test]
fn nothing_is_punted_without_dhcp_and_server_replies_only_in_relay_mode() {
    let mut r = Rig::with(DhcpPunt::Off);
    let any = Ipv4Addr::UNSPECIFIED;
    r.send(
        Side::Access,
        &dhcp_frame(BCAST, &[], any, Ipv4Addr::BROADCAST, 67),
    );
    r.send(Side::Core, &server_reply());
    assert!(r.punted().is_empty());
    let c = r.counters();
    assert_eq!((c.punted, c.dhcp_client, c.dhcp_server), (0, 0, 0));
    assert_eq!(c.dropped(DropReason::Ipv4MartianSource), 1);

    let mut r = Rig::with(DhcpPunt::Server);
    r.send(Side::Core, &server_reply());
    assert!(r.punted().is_empty());
    let c = r.counters();
    assert_eq!((c.punted, c.dhcp_client, c.dhcp_server), (0, 0, 0));
}

#[test]
fn an_injected_reply_goes_out_of_the_access_port_as_given() {
    let mut r = Rig::new();
    let mut ip = Vec::new();
    PacketBuilder::ipv4(GW_ACC.octets(), [255; 4], 64)
        .udp(67, 68)
        .write(&mut ip, &[0xa5; 300])
        .unwrap();
    let mut f = Vec::new();
    f.extend_from_slice(&SUB_MAC.0);
    f.extend_from_slice(&ACC_MAC.0);
    f.extend_from_slice(&[0x81, 0x00, 0x00, 100, 0x08, 0x00]);
    f.extend_from_slice(&ip);
    r.ctl
        .inject
        .push(Frame::new(Side::Access, &f).unwrap())
        .unwrap();
    r.worker.poll(r.now);
    assert_eq!(r.access.drain(), vec![f]);
    assert_eq!(r.counters().injected, 1);
}
