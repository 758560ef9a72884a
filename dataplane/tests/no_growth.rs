//! Nothing on the per-packet path allocates (issue 13 item 4: no growable map on the
//! per-packet path). A counting global allocator watches a worker while packets open
//! flows, choose servers for `login`-type services (whose per-login stickiness was a
//! growable map) and are forwarded both ways: after a warm-up, not one allocation or
//! reallocation may happen, however many first packets there are.

use std::alloc::System;
use std::net::Ipv4Addr;
use std::sync::Arc;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tollgate_dataplane::nat::{NatConfig, Timeouts};
use tollgate_dataplane::port::memory::{FrameSet, MemoryPort};
use tollgate_dataplane::service::{Policy, RealServer, Service, Services, SessionType};
use tollgate_dataplane::session::{Bandwidth, Limits, ServiceSet, SessionSpec};
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::stage::SubscriberLimits;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Command, ControlEnds, ForwardingBuilder, HeapPool, RingSizes, SideConfig, Unknown, Worker,
    WorkerConfig, worker_rings,
};
use tollgate_testkit::lab::{ACC_MAC, CORE_MAC};
use tollgate_testkit::scenario::{SERVERS, VIP, srv_mac, sub_ip, sub_mac};
use tollgate_testkit::traffic::{self, Ends, tcp_flags};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Sessions warmed up with, and as many again measured.
const HALF: u32 = 256;

fn syns(from: u32, to: u32, sport: u16) -> Arc<FrameSet> {
    let mut set = FrameSet::with_capacity(64, (to - from) as usize);
    for i in from..to {
        let f = set.push_with(traffic::L4_AT + 20).expect("fits");
        let ends = Ends {
            src_mac: sub_mac(i),
            dst_mac: ACC_MAC,
            src: (sub_ip(i), sport),
            dst: (VIP, 80),
        };
        traffic::tcp(f, &ends, 64, 1, 0, tcp_flags::SYN, 1000, 0).expect("fits");
    }
    Arc::new(set)
}

fn settle(worker: &mut Worker<MemoryPort>, ctl: &mut ControlEnds, now: &mut u64) -> u64 {
    let mut seen = 0;
    loop {
        *now += 1;
        let n = worker.poll(Instant(*now));
        seen += n as u64;
        while ctl.events.pop().is_some() {}
        while ctl.punt.pop().is_some() {}
        if n == 0 && ctl.commands.free() == ctl.commands.capacity() {
            return seen;
        }
    }
}

/// The allocator's counters are global: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// PPPoE over QinQ both ways (ACC-1, ACC-4, ACC-5), at steady state through the
/// scenario every bench uses: decapsulation, the line check, the MSS clamp check and the
/// downlink template allocate nothing.
#[test]
fn pppoe_and_qinq_traffic_allocates_nothing() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rig = tollgate_testkit::scenario::rig_on(
        2 * HALF,
        1,
        32,
        tollgate_testkit::scenario::Access::PppoeQinq,
    );
    rig.run(64);
    let before = rig.worker.report(0, Instant(rig.now)).counters;
    let region = Region::new(GLOBAL);
    let received = rig.run(256);
    let change = region.change();
    let c = rig.worker.report(0, Instant(rig.now)).counters;
    assert!(received > 0);
    assert_eq!(
        c.forwarded - before.forwarded,
        received,
        "every packet forwarded"
    );
    assert_eq!(c.total_drops(), before.total_drops(), "nothing dropped");
    assert_eq!(
        (change.allocations, change.reallocations),
        (0, 0),
        "the PPPoE path allocated: {change:?}"
    );
}

#[test]
fn first_packets_of_login_flows_allocate_nothing() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let svc = Service {
        vip: VIP,
        protocol: 6,
        port: 80,
        policy: Policy::LeastConnections,
        session_type: SessionType::Login,
        servers: SERVERS.iter().map(|a| RealServer::new(*a, 8080)).collect(),
    };
    let fwd = ForwardingBuilder::new(
        SideConfig {
            mac: ACC_MAC,
            address: Ipv4Addr::new(10, 0, 0, 1),
            prefix_len: 8,
        },
        SideConfig {
            mac: CORE_MAC,
            address: Ipv4Addr::new(192, 0, 2, 1),
            prefix_len: 24,
        },
    )
    .services(Services::new(vec![svc]).expect("one service"))
    .nat(NatConfig {
        addresses: vec![Ipv4Addr::new(198, 18, 1, 1)],
        ports: (1024, 65535),
        timeouts: Timeouts::default(),
    })
    .unknown(Unknown::Drop)
    .build()
    .expect("valid");
    let publisher = Publisher::new(fwd);
    let (w, mut ctl) = worker_rings(RingSizes {
        messages: 4096,
        frames: 64,
    });
    let cfg = WorkerConfig {
        commands_per_poll: 1024,
        subscribers: SubscriberLimits {
            sessions: 2 * HALF as usize,
            flows: 4 * HALF as usize,
            ..SubscriberLimits::default()
        },
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(
        cfg,
        MemoryPort::idle(),
        MemoryPort::idle(),
        HeapPool::new(1024),
        publisher.reader(),
        w,
    );
    let mut now = 1u64;
    for ip in SERVERS {
        let mac = srv_mac(ip);
        ctl.commands
            .push(Command::NeighborSet { ip, mac })
            .expect("room");
    }
    for i in 0..2 * HALF {
        let spec = SessionSpec {
            id: i,
            user: i as u64,
            channel: i,
            address: sub_ip(i),
            mac: Some(sub_mac(i)),
            started: Instant(1),
            limits: Limits::default(),
            bandwidth: Bandwidth::default(),
            services: ServiceSet::ALL,
            max_flows: 0,
            access: Default::default(),
        };
        while ctl.commands.push(Command::SessionAdd(spec)).is_err() {
            settle(&mut worker, &mut ctl, &mut now);
        }
    }
    settle(&mut worker, &mut ctl, &mut now);
    assert_eq!(worker.pipeline().sessions.len(), 2 * HALF as usize);

    // Warm-up: the first half's first flows (and a second flow each).
    let warm = [syns(0, HALF, 10_000), syns(0, HALF, 10_001)];
    // Measured: the second half's first flows, each a first choice for its login.
    let measured = [syns(HALF, 2 * HALF, 10_000), syns(HALF, 2 * HALF, 10_001)];
    // Every port the measured polls use is made before they start.
    let ports: Vec<(MemoryPort, MemoryPort)> = measured
        .iter()
        .map(|f| {
            (
                MemoryPort::replaying(f.clone(), HALF as u64),
                MemoryPort::idle(),
            )
        })
        .collect();
    for f in &warm {
        worker = worker.with_ports(
            MemoryPort::replaying(f.clone(), HALF as u64),
            MemoryPort::idle(),
        );
        assert_eq!(settle(&mut worker, &mut ctl, &mut now), HALF as u64);
    }
    let opened = worker.report(0, Instant(now)).counters.flows_opened;
    assert_eq!(opened, 2 * HALF as u64);

    let region = Region::new(GLOBAL);
    let mut received = 0;
    for (access, core) in ports {
        worker = worker.with_ports(access, core);
        received += settle(&mut worker, &mut ctl, &mut now);
    }
    let change = region.change();

    assert_eq!(received, 2 * HALF as u64);
    let c = worker.report(0, Instant(now)).counters;
    assert_eq!(c.flows_opened, 4 * HALF as u64, "every SYN opened a flow");
    assert_eq!(c.sticky_full, 0);
    assert_eq!(c.total_drops(), 0);
    assert_eq!(
        (change.allocations, change.reallocations),
        (0, 0),
        "the per-packet path allocated: {change:?}"
    );
}
