//! Packet buffers, buffer pools and bursts.
//!
//! A port backend decides what a buffer is: DPDK hands out mbufs, every other backend
//! uses [`HeapBuf`]s from a worker-owned [`HeapPool`]. Stages see only the [`PacketBuf`]
//! trait, so the worker loop is monomorphised per backend with no runtime dispatch.
//! Buffers are allocated once, when the pool is made; the fast path only moves them
//! between the pool, bursts, the hold queue and ports.

use arrayvec::ArrayVec;

/// The largest burst a worker handles in one poll; `engine.burst` may choose less.
pub const MAX_BURST: usize = 256;

/// A fixed-capacity array of buffers owned by the worker and reused for every poll.
pub type Burst<B> = ArrayVec<B, MAX_BURST>;

/// Bytes kept free in front of the packet for encapsulation (same as DPDK's default
/// `RTE_PKTMBUF_HEADROOM`).
pub const HEADROOM: usize = 128;
/// Bytes of packet data a [`HeapBuf`] holds after the headroom (same as DPDK's default
/// mbuf data room).
pub const DATA_ROOM: usize = 2048;
const BUF_SIZE: usize = HEADROOM + DATA_ROOM;

/// What the stages need from a packet buffer.
pub trait PacketBuf: Send {
    /// The packet bytes.
    fn data(&self) -> &[u8];
    /// The packet bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Packet length in bytes.
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True for a zero-length packet.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sets the packet length, growing into the tailroom or cutting the tail. Returns false
    /// (and changes nothing) if `len` does not fit.
    fn set_len(&mut self, len: usize) -> bool;
    /// Grows the packet at the front by `n` bytes of headroom. False if there is no room.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front. False if the packet is shorter.
    fn strip(&mut self, n: usize) -> bool;
    /// The longest the packet may become with [`Self::set_len`].
    fn capacity(&self) -> usize;
}

/// A source of packet buffers for a worker. One per worker, shared by its ports.
pub trait BufPool: Send {
    /// The buffer type.
    type Buf: PacketBuf;
    /// True when a buffer may be freed into any worker's pool of this type (a DPDK mbuf
    /// goes back to its own mempool whoever frees it). False for private pools, which
    /// must get back a buffer for each one they hand to another worker
    /// ([`crate::handoff`]).
    const SHARED: bool = false;
    /// Takes a buffer (empty, headroom reset), or `None` if the pool is exhausted.
    fn alloc(&mut self) -> Option<Self::Buf>;
    /// Returns a buffer.
    fn free(&mut self, buf: Self::Buf);
    /// Buffers available now.
    fn available(&self) -> usize;
}

/// A heap-allocated packet buffer with DPDK's layout: headroom, then up to 2048 bytes.
pub struct HeapBuf {
    mem: Box<[u8; BUF_SIZE]>,
    start: u16,
    len: u16,
}

impl HeapBuf {
    fn new() -> Self {
        HeapBuf {
            mem: Box::new([0u8; BUF_SIZE]),
            start: HEADROOM as u16,
            len: 0,
        }
    }

    /// Copies `bytes` in as the whole packet. False if they do not fit.
    pub fn fill(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > BUF_SIZE - self.start as usize {
            return false;
        }
        let s = self.start as usize;
        self.mem[s..s + bytes.len()].copy_from_slice(bytes);
        self.len = bytes.len() as u16;
        true
    }

    /// Bytes free in front of the packet.
    pub fn headroom(&self) -> usize {
        self.start as usize
    }
}

impl std::fmt::Debug for HeapBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapBuf")
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

impl PacketBuf for HeapBuf {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        let s = self.start as usize;
        &self.mem[s..s + self.len as usize]
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        let s = self.start as usize;
        &mut self.mem[s..s + self.len as usize]
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.len as usize
    }

    fn set_len(&mut self, len: usize) -> bool {
        if len > BUF_SIZE - self.start as usize {
            return false;
        }
        self.len = len as u16;
        true
    }

    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start as usize {
            return false;
        }
        self.start -= n as u16;
        self.len += n as u16;
        true
    }

    fn strip(&mut self, n: usize) -> bool {
        if n > self.len as usize {
            return false;
        }
        self.start += n as u16;
        self.len -= n as u16;
        true
    }

    fn capacity(&self) -> usize {
        BUF_SIZE - self.start as usize
    }
}

/// A worker's pool of [`HeapBuf`]s, all allocated up front.
pub struct HeapPool {
    free: Vec<HeapBuf>,
    size: usize,
}

impl HeapPool {
    /// Bytes a pool of `n` buffers allocates, for sizing before anything is allocated.
    pub fn bytes_for(n: usize) -> usize {
        n.saturating_mul(BUF_SIZE + std::mem::size_of::<HeapBuf>())
    }

    /// A pool of `n` buffers.
    pub fn new(n: usize) -> Self {
        HeapPool {
            free: (0..n).map(|_| HeapBuf::new()).collect(),
            size: n,
        }
    }

    /// How many buffers the pool was made with.
    pub fn size(&self) -> usize {
        self.size
    }
}

impl std::fmt::Debug for HeapPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeapPool({}/{})", self.free.len(), self.size)
    }
}

impl BufPool for HeapPool {
    type Buf = HeapBuf;

    #[inline(always)]
    fn alloc(&mut self) -> Option<HeapBuf> {
        let mut b = self.free.pop()?;
        b.start = HEADROOM as u16;
        b.len = 0;
        Some(b)
    }

    #[inline(always)]
    fn free(&mut self, buf: HeapBuf) {
        // The pool never holds more than it was made with, so this push never reallocates.
        debug_assert!(self.free.len() < self.size);
        self.free.push(buf);
    }

    fn available(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_and_tailroom() {
        let mut pool = HeapPool::new(2);
        let mut b = pool.alloc().unwrap();
        assert!(b.fill(&[1, 2, 3]));
        assert_eq!(b.data(), &[1, 2, 3]);
        assert!(b.prepend(2));
        b.data_mut()[..2].copy_from_slice(&[9, 9]);
        assert_eq!(b.data(), &[9, 9, 1, 2, 3]);
        assert!(b.strip(2));
        assert_eq!(b.data(), &[1, 2, 3]);
        assert!(!b.prepend(HEADROOM + 1));
        assert!(b.set_len(DATA_ROOM));
        assert!(!b.set_len(DATA_ROOM + 1));
        assert_eq!(pool.available(), 1);
        pool.free(b);
        assert_eq!(pool.available(), 2);
        let b = pool.alloc().unwrap();
        assert_eq!(b.len(), 0);
        assert_eq!(b.headroom(), HEADROOM);
    }
}
