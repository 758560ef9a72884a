//! Bytes of fast-path state per session and per flow, measured: the heap the session and
//! flow tables allocate at a given capacity (slab, index maps, deadline heap, NAT port
//! pools), divided by the capacity. Printed by `make bench`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use tollgate_dataplane::nat::FlowTable;
use tollgate_dataplane::session::SessionTable;

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        ALLOCATED.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` was allocated by `alloc` above with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.load(Ordering::Relaxed);
    let t = f();
    (t, ALLOCATED.load(Ordering::Relaxed) - before)
}

fn main() {
    for n in [100_000usize, 1_000_000] {
        let (t, bytes) = measure(|| SessionTable::new(n, 20, 1024));
        println!(
            "sessions: {n:>9} capacity: {:>6.1} B/session allocated ({} B slab entry)",
            bytes as f64 / n as f64,
            SessionTable::bytes_per_session()
        );
        drop(t);
        // One NAT address per 64k flows, as a deployment at that size would configure.
        let addresses = n / 64_000 + 1;
        let (t, bytes) = measure(|| FlowTable::new(n, addresses, (1024, 65535)));
        println!(
            "flows:    {n:>9} capacity: {:>6.1} B/flow allocated ({} B slab entry; NAT port pools of {addresses} addresses included)",
            bytes as f64 / n as f64,
            FlowTable::bytes_per_flow()
        );
        drop(t);
    }
}
