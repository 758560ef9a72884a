//! In-memory ports for tests, benches and the traffic generator.
//!
//! A port either exchanges frames with a [`MemoryPeer`] through two SPSC rings (tests:
//! feed frames in, read what came out), or replays a [`FrameSet`] of template frames as
//! fast as the worker takes them and only counts what it sends (benches: no allocation,
//! the copy into the buffer standing in for a NIC's DMA). A frame set is one contiguous
//! array, so replaying millions of frames (one per flow) streams through memory the way
//! a NIC's DMA would, with no pointer chasing of its own.

use std::sync::Arc;

use crate::buf::{BufPool, Burst, HeapBuf, HeapPool, PacketBuf};
use crate::ring::{Consumer, Producer, ring};

use super::{Peer, Port, PortStats};

/// Frames stored back to back in one allocation, each in a slot of `stride` bytes.
#[derive(Clone, Debug, Default)]
pub struct FrameSet {
    data: Vec<u8>,
    lens: Vec<u16>,
    stride: usize,
}

impl FrameSet {
    /// An empty set whose frames are at most `stride` bytes, with room for `n` of them.
    pub fn with_capacity(stride: usize, n: usize) -> FrameSet {
        FrameSet {
            data: Vec::with_capacity(stride * n),
            lens: Vec::with_capacity(n),
            stride: stride.max(1),
        }
    }

    /// Appends a frame. False (and nothing added) if it is longer than the stride.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        if frame.len() > self.stride {
            return false;
        }
        let at = self.data.len();
        self.data.resize(at + self.stride, 0);
        self.data[at..at + frame.len()].copy_from_slice(frame);
        self.lens.push(frame.len() as u16);
        true
    }

    /// Appends a slot of `len` zero bytes and returns it to be written in place.
    pub fn push_with(&mut self, len: usize) -> Option<&mut [u8]> {
        if len > self.stride {
            return None;
        }
        let at = self.data.len();
        self.data.resize(at + self.stride, 0);
        self.lens.push(len as u16);
        Some(&mut self.data[at..at + len])
    }

    /// Frame `i`.
    #[inline(always)]
    pub fn get(&self, i: usize) -> &[u8] {
        let at = i * self.stride;
        &self.data[at..at + self.lens[i] as usize]
    }

    /// Frames in the set.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Bytes the set holds (slots and lengths).
    pub fn memory_bytes(&self) -> usize {
        self.data.capacity() + self.lens.capacity() * 2
    }
}

impl From<Vec<Vec<u8>>> for FrameSet {
    fn from(frames: Vec<Vec<u8>>) -> FrameSet {
        let stride = frames.iter().map(Vec::len).max().unwrap_or(0);
        let mut set = FrameSet::with_capacity(stride, frames.len());
        for f in &frames {
            set.push(f);
        }
        set
    }
}

enum Source {
    Ring(Consumer<Vec<u8>>),
    Repeat {
        frames: Arc<FrameSet>,
        next: usize,
        remaining: u64,
    },
    Idle,
}

enum Sink {
    Ring(Producer<Vec<u8>>),
    Count,
}

/// The outside end of a ring-mode [`MemoryPort`].
pub struct MemoryPeer {
    /// Frames pushed here are received by the port.
    pub to_port: Producer<Vec<u8>>,
    /// Frames the port sent.
    pub from_port: Consumer<Vec<u8>>,
}

impl MemoryPeer {
    /// Queues a frame for the port to receive. False if the ring is full.
    pub fn send(&mut self, frame: Vec<u8>) -> bool {
        self.to_port.push(frame).is_ok()
    }

    /// Everything the port has sent so far.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.from_port.pop()).collect()
    }
}

impl Peer for MemoryPeer {
    fn push_frame(&mut self, frame: &[u8]) -> bool {
        self.send(frame.to_vec())
    }

    fn take_frames(&mut self) -> Vec<Vec<u8>> {
        self.drain()
    }
}

/// An in-memory port.
pub struct MemoryPort {
    source: Source,
    sink: Sink,
    stats: PortStats,
    /// Frames counted by a counting sink.
    pub sent_packets: u64,
    /// Bytes counted by a counting sink.
    pub sent_bytes: u64,
}

impl MemoryPort {
    /// A port joined to a [`MemoryPeer`] by rings of `capacity` frames each way.
    pub fn with_peer(capacity: usize) -> (MemoryPort, MemoryPeer) {
        let (to_port, rx) = ring(capacity);
        let (tx, from_port) = ring(capacity);
        (
            MemoryPort::new(Source::Ring(rx), Sink::Ring(tx)),
            MemoryPeer { to_port, from_port },
        )
    }

    /// Two ports joined back to back by rings of `capacity` frames each way: what one
    /// sends, the other receives (the traffic generator facing an in-process gateway).
    pub fn pair(capacity: usize) -> (MemoryPort, MemoryPort) {
        let (a_tx, b_rx) = ring(capacity);
        let (b_tx, a_rx) = ring(capacity);
        (
            MemoryPort::new(Source::Ring(a_rx), Sink::Ring(a_tx)),
            MemoryPort::new(Source::Ring(b_rx), Sink::Ring(b_tx)),
        )
    }

    /// A port that receives `frames` round-robin, `count` frames in all (`u64::MAX` for
    /// ever), and counts what it sends.
    pub fn repeating(frames: Vec<Vec<u8>>, count: u64) -> MemoryPort {
        MemoryPort::replaying(Arc::new(frames.into()), count)
    }

    /// A port that receives the frames of `frames` round-robin, `count` frames in all
    /// (`u64::MAX` for ever), and counts what it sends. Ports may share one set.
    pub fn replaying(frames: Arc<FrameSet>, count: u64) -> MemoryPort {
        let source = if frames.is_empty() {
            Source::Idle
        } else {
            Source::Repeat {
                frames,
                next: 0,
                remaining: count,
            }
        };
        MemoryPort::new(source, Sink::Count)
    }

    /// A port that receives nothing and counts what it sends.
    pub fn idle() -> MemoryPort {
        MemoryPort::new(Source::Idle, Sink::Count)
    }

    fn new(source: Source, sink: Sink) -> MemoryPort {
        MemoryPort {
            source,
            sink,
            stats: PortStats::default(),
            sent_packets: 0,
            sent_bytes: 0,
        }
    }
}

impl std::fmt::Debug for MemoryPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemoryPort(sent {})", self.sent_packets)
    }
}

impl Port for MemoryPort {
    type Pool = HeapPool;

    fn rx_burst(&mut self, pool: &mut HeapPool, out: &mut Burst<HeapBuf>, max: usize) {
        let room = max.min(out.remaining_capacity());
        match &mut self.source {
            Source::Idle => {}
            Source::Ring(rx) => {
                for _ in 0..room {
                    if rx.is_empty() {
                        break;
                    }
                    let Some(mut buf) = pool.alloc() else {
                        self.stats.rx_no_buffer += 1;
                        break;
                    };
                    let Some(frame) = rx.pop() else {
                        pool.free(buf);
                        break;
                    };
                    if buf.fill(&frame) {
                        out.push(buf);
                    } else {
                        self.stats.rx_too_big += 1;
                        pool.free(buf);
                    }
                }
            }
            Source::Repeat {
                frames,
                next,
                remaining,
            } => {
                let n = (room as u64).min(*remaining) as usize;
                for _ in 0..n {
                    let Some(mut buf) = pool.alloc() else {
                        self.stats.rx_no_buffer += 1;
                        break;
                    };
                    if !buf.fill(frames.get(*next)) {
                        self.stats.rx_too_big += 1;
                        pool.free(buf);
                    } else {
                        out.push(buf);
                    }
                    *remaining -= 1;
                    *next += 1;
                    if *next == frames.len() {
                        *next = 0;
                    }
                }
            }
        }
    }

    fn tx_burst(&mut self, pool: &mut HeapPool, pkts: &mut Burst<HeapBuf>) -> usize {
        match &mut self.sink {
            Sink::Count => {
                let n = pkts.len();
                for b in pkts.drain(..) {
                    self.sent_packets += 1;
                    self.sent_bytes += b.len() as u64;
                    pool.free(b);
                }
                n
            }
            Sink::Ring(tx) => {
                let n = pkts.len().min(tx.free());
                for b in pkts.drain(..n) {
                    self.sent_packets += 1;
                    self.sent_bytes += b.len() as u64;
                    // Cannot fail: we checked the free space and are the only producer.
                    let _ = tx.push(b.data().to_vec());
                    pool.free(b);
                }
                n
            }
        }
    }

    fn stats(&mut self) -> PortStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_round_trip_and_short_tx() {
        let mut pool = HeapPool::new(8);
        let (mut port, mut peer) = MemoryPort::with_peer(2);
        assert!(peer.send(vec![1, 2, 3]));
        assert!(peer.send(vec![4]));
        assert!(!peer.send(vec![5]));
        let mut burst = Burst::new();
        port.rx_burst(&mut pool, &mut burst, 32);
        assert_eq!(burst.len(), 2);
        assert_eq!(burst[0].data(), &[1, 2, 3]);
        let extra = pool.alloc().unwrap();
        burst.push(extra);
        assert_eq!(port.tx_burst(&mut pool, &mut burst), 2, "ring holds two");
        assert_eq!(burst.len(), 1, "unsent tail stays with the caller");
        pool.free(burst.pop().unwrap());
        assert_eq!(pool.available(), 8);
        assert_eq!(peer.drain(), vec![vec![1, 2, 3], vec![4]]);
    }

    #[test]
    fn repeating_stops_after_count() {
        let mut pool = HeapPool::new(64);
        let mut port = MemoryPort::repeating(vec![vec![1], vec![2]], 5);
        let mut burst = Burst::new();
        port.rx_burst(&mut pool, &mut burst, 32);
        let got: Vec<u8> = burst.iter().map(|b| b.data()[0]).collect();
        assert_eq!(got, vec![1, 2, 1, 2, 1]);
        assert_eq!(port.tx_burst(&mut pool, &mut burst), 5);
        assert_eq!(port.sent_packets, 5);
        port.rx_burst(&mut pool, &mut burst, 32);
        assert!(burst.is_empty());
    }
}
