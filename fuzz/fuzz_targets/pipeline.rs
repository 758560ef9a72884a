//! Any bytes, as a frame on either side, through the whole worker pipeline (every wire
//! parser and stage): no panic, and the worker's balance holds.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use tollgate_dataplane::port::memory::MemoryPort;
use tollgate_dataplane::snapshot::Publisher;
use tollgate_dataplane::time::Instant;
use tollgate_dataplane::{
    Command, ForwardingBuilder, HeapPool, MacAddr, Route, SideConfig, Worker, WorkerConfig, worker_rings,
};

fuzz_target!(|data: &[u8]| {
    let Some((&first, frame)) = data.split_first() else { return };
    let fwd = ForwardingBuilder::new(
        SideConfig { mac: MacAddr([2, 0, 0, 0, 0, 1]), address: Ipv4Addr::new(10, 10, 0, 1), prefix_len: 24 },
        SideConfig { mac: MacAddr([2, 0, 0, 0, 0, 2]), address: Ipv4Addr::new(192, 0, 2, 1), prefix_len: 24 },
    )
    .route(Route { prefix: Ipv4Addr::new(0, 0, 0, 0), len: 0, via: Ipv4Addr::new(192, 0, 2, 254) })
    .build()
    .expect("valid table");
    let publisher = Publisher::new(fwd);
    let (w, mut ctl) = worker_rings(Default::default());
    let (a, mut access) = MemoryPort::with_peer(4);
    let (c, mut core) = MemoryPort::with_peer(4);
    let mut worker = Worker::new(WorkerConfig::default(), a, c, HeapPool::new(256), publisher.reader(), w);
    let _ = ctl.commands.push(Command::NeighborSet { ip: Ipv4Addr::new(192, 0, 2, 10), mac: MacAddr([2, 9, 9, 9, 9, 9]) });
    if first & 1 == 0 { access.send(frame.to_vec()); } else { core.send(frame.to_vec()); }
    worker.poll(Instant(1_000_000_000));
    let held = worker.held() as u64;
    let (i, o) = worker.report(0, Instant(1_000_000_000)).counters.balance(held);
    assert_eq!(i, o);
});
