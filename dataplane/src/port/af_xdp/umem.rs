//! The UMEM: one region of packet frames that every AF_XDP socket of the engine shares,
//! the worker pools that own its frames, and the buffer type that is one frame.
//!
//! A frame belongs to exactly one owner at a time: a worker's [`XdpPool`] (free), a burst
//! or the hold queue of a worker (an [`XdpBuf`]), or one socket's ring (fill, rx, tx or
//! completion). Ownership moves with the frame's address: the pool hands frames to a
//! port's fill ring, the kernel writes a frame and returns its address on the rx ring,
//! the worker processes the frame in place and puts the same address on a tx ring, and
//! the completion ring gives it back to the pool. No byte is copied in user space.
//!
//! All sockets share one UMEM (`XDP_SHARED_UMEM`, each with its own fill and completion
//! ring), so a frame received on one interface is sent on the other as it is, and a
//! packet handed to another worker ([`crate::handoff`]) is still a frame that worker can
//! send or recycle. Pools are private ([`BufPool::SHARED`] is false): the handoff gives
//! back one free frame for each packet it takes, so each worker keeps its share.
//!
//! The region is unmapped when the last pool and port let go of it and every frame came
//! back to one of them; a frame that escaped (a buffer leaked or still held elsewhere)
//! keeps the mapping alive for the life of the process, so no buffer can point into
//! unmapped memory.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::buf::{BufPool, PacketBuf};

/// Where a fresh buffer's packet starts in its frame: the headroom the kernel leaves in
/// front of received frames (`XDP_PACKET_HEADROOM`), so encapsulation can prepend.
pub const FRAME_HEADROOM: usize = 256;

/// The frame sizes a UMEM may use (aligned chunk mode: a power of two, at most a page).
pub const FRAME_SIZES: [usize; 2] = [2048, 4096];

/// One packet: a frame of the UMEM and the part of it that holds the packet.
pub struct XdpBuf {
    frame: NonNull<u8>,
    start: u16,
    len: u16,
    size: u16,
}

// SAFETY: an XdpBuf is the only handle on its frame (the ownership rule of the module
// docs: it is not Clone, and the pool and rings never hand out a frame twice), so moving
// it to another thread moves exclusive access to those bytes with it.
unsafe impl Send for XdpBuf {}

impl std::fmt::Debug for XdpBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpBuf")
            .field("frame", &self.frame)
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

impl XdpBuf {
    /// The frame's first byte.
    #[inline(always)]
    pub(super) fn frame_ptr(&self) -> *mut u8 {
        self.frame.as_ptr()
    }

    /// Where the packet starts in the frame.
    #[inline(always)]
    pub(super) fn start(&self) -> usize {
        self.start as usize
    }

    /// A buffer for the frame at `frame` holding `len` bytes from `start`.
    ///
    /// # Safety
    /// `frame` is the first byte of a frame of `size` bytes of a live UMEM that the
    /// caller owns and gives to the new buffer, and `start + len <= size`.
    #[inline(always)]
    pub(super) unsafe fn from_frame(
        frame: NonNull<u8>,
        start: usize,
        len: usize,
        size: usize,
    ) -> Self {
        debug_assert!(start + len <= size);
        XdpBuf {
            frame,
            start: start as u16,
            len: len as u16,
            size: size as u16,
        }
    }
}

impl PacketBuf for XdpBuf {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        // SAFETY: the frame is ours alone (module docs) and stays mapped while any
        // buffer exists (the UMEM is only unmapped when every frame is back);
        // start + len <= size is kept by every method below.
        unsafe {
            std::slice::from_raw_parts(
                self.frame.as_ptr().add(self.start as usize),
                self.len as usize,
            )
        }
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; &mut self makes this the only view of the bytes.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.frame.as_ptr().add(self.start as usize),
                self.len as usize,
            )
        }
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.len as usize
    }

    fn set_len(&mut self, len: usize) -> bool {
        if len > (self.size - self.start) as usize {
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
        (self.size - self.start) as usize
    }
}

/// Why a UMEM could not be made.
#[derive(Debug, thiserror::Error)]
pub enum UmemError {
    /// The frame size is not one the kernel accepts in aligned mode.
    #[error("af_xdp.frame_size {0}: must be 2048 or 4096")]
    FrameSize(usize),
    /// Too few or too many frames.
    #[error(
        "{frames} frames of {frame_size} bytes: need at least one per worker and at most 4 GiB in all"
    )]
    Frames {
        /// Frames asked for.
        frames: usize,
        /// Their size.
        frame_size: usize,
    },
    /// Mapping the memory failed.
    #[error("mapping {bytes} bytes for the AF_XDP frames failed: {source}")]
    Mmap {
        /// The region's size.
        bytes: usize,
        /// The OS error.
        source: io::Error,
    },
}

/// The shared frame region. See the [module docs](self).
pub struct Umem {
    base: NonNull<u8>,
    len: usize,
    frame_size: usize,
    frames: usize,
    /// Frames given back by pools and ports that were dropped.
    home: AtomicUsize,
    /// Bound sockets that share this UMEM (descriptor, interface index, queue): a new
    /// socket binds with one of them (`XDP_SHARED_UMEM`), or registers the region itself
    /// when there is none.
    pub(super) bound: Mutex<Vec<(std::os::fd::RawFd, u32, u32)>>,
}

// SAFETY: the region is plain memory; which thread may touch which frame is decided by
// frame ownership (module docs), never by the Umem, whose own fields are immutable or
// atomic/locked.
unsafe impl Send for Umem {}
// SAFETY: as above: shared access to the Umem reads immutable fields, the atomic and the
// mutex only.
unsafe impl Sync for Umem {}

impl std::fmt::Debug for Umem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Umem({} frames of {} bytes)",
            self.frames, self.frame_size
        )
    }
}

impl Umem {
    /// A region of `frames` frames of `frame_size` bytes, split into `workers` pools of
    /// equal share (the remainder goes to the first).
    ///
    /// # Errors
    /// A frame size other than 2048 or 4096, fewer frames than workers, or no memory.
    pub fn new(
        frames: usize,
        frame_size: usize,
        workers: usize,
    ) -> Result<(Arc<Umem>, Vec<XdpPool>), UmemError> {
        if !FRAME_SIZES.contains(&frame_size) {
            return Err(UmemError::FrameSize(frame_size));
        }
        let workers = workers.max(1);
        let len = frames.checked_mul(frame_size).filter(|l| *l <= 1 << 32);
        let Some(len) = len.filter(|_| frames >= workers) else {
            return Err(UmemError::Frames { frames, frame_size });
        };
        // SAFETY: a fresh anonymous mapping at an address the kernel picks.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(UmemError::Mmap {
                bytes: len,
                source: io::Error::last_os_error(),
            });
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| UmemError::Mmap {
            bytes: len,
            source: io::Error::other("mmap returned NULL"),
        })?;
        let umem = Arc::new(Umem {
            base,
            len,
            frame_size,
            frames,
            home: AtomicUsize::new(0),
            bound: Mutex::new(Vec::new()),
        });
        let share = frames / workers;
        let mut first = 0;
        let pools = (0..workers)
            .map(|w| {
                let n = if w == 0 {
                    frames - share * (workers - 1)
                } else {
                    share
                };
                let pool = XdpPool {
                    umem: umem.clone(),
                    base,
                    frame_size,
                    free: {
                        // Room for every frame of the UMEM: a free never reallocates,
                        // whichever worker's frames pass through this pool.
                        let mut v = Vec::with_capacity(frames);
                        v.extend((first..first + n).rev().map(|i| i as u32));
                        v
                    },
                    size: n,
                };
                first += n;
                pool
            })
            .collect();
        Ok((umem, pools))
    }

    /// The region's first byte.
    pub(super) fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// The region's length in bytes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes per frame.
    pub fn frame_size(&self) -> usize {
        self.frame_size
    }

    /// Frames in the region.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Records `n` frames as back for good (their pool or port is gone).
    pub(super) fn returned(&self, n: usize) {
        self.home.fetch_add(n, Ordering::AcqRel);
    }
}

impl Drop for Umem {
    fn drop(&mut self) {
        if self.home.load(Ordering::Acquire) != self.frames {
            // A frame is still out (a leaked buffer): keep the memory it points into.
            return;
        }
        // SAFETY: we mapped exactly this range; every frame is back, so no buffer points
        // into it, and the last pool and port (the other holders of the pointer) are gone.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// A worker's free frames. See the [module docs](self).
pub struct XdpPool {
    umem: Arc<Umem>,
    base: NonNull<u8>,
    frame_size: usize,
    /// Indexes of free frames.
    free: Vec<u32>,
    size: usize,
}

// SAFETY: the pool's frames are its own (module docs); the pointer is the UMEM's base,
// which the Arc keeps alive, and the pool only derives frame pointers from it.
unsafe impl Send for XdpPool {}

impl std::fmt::Debug for XdpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "XdpPool({}/{})", self.free.len(), self.size)
    }
}

impl XdpPool {
    /// The UMEM the pool's frames belong to.
    pub fn umem(&self) -> &Arc<Umem> {
        &self.umem
    }

    /// How many frames the pool started with.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Takes a free frame's address (its offset in the UMEM), for a fill ring.
    #[inline(always)]
    pub(super) fn take_addr(&mut self) -> Option<u64> {
        self.free.pop().map(|i| i as u64 * self.frame_size as u64)
    }

    /// Gives back the frame at `addr` (any address inside it), from a completion ring.
    #[inline(always)]
    pub(super) fn put_addr(&mut self, addr: u64) {
        let i = (addr / self.frame_size as u64) as u32;
        debug_assert!((i as usize) < self.umem.frames);
        self.free.push(i);
    }
}

impl BufPool for XdpPool {
    type Buf = XdpBuf;

    #[inline(always)]
    fn alloc(&mut self) -> Option<XdpBuf> {
        let i = self.free.pop()? as usize;
        // SAFETY: frame i lies in the region (indexes come from Umem::new or from a
        // frame the kernel or a buffer gave back), and the pool gives it up here.
        let frame = unsafe { NonNull::new_unchecked(self.base.as_ptr().add(i * self.frame_size)) };
        // SAFETY: as above; FRAME_HEADROOM < every frame size.
        Some(unsafe { XdpBuf::from_frame(frame, FRAME_HEADROOM, 0, self.frame_size) })
    }

    #[inline(always)]
    fn free(&mut self, buf: XdpBuf) {
        let off = buf.frame.as_ptr() as usize - self.base.as_ptr() as usize;
        debug_assert!(off < self.umem.len && off.is_multiple_of(self.frame_size));
        self.free.push((off / self.frame_size) as u32);
    }

    fn available(&self) -> usize {
        self.free.len()
    }
}

impl Drop for XdpPool {
    fn drop(&mut self) {
        self.umem.returned(self.free.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_split_the_frames_and_buffers_round_trip() {
        let (umem, mut pools) = Umem::new(10, 2048, 3).unwrap();
        assert_eq!(
            pools.iter().map(|p| p.available()).collect::<Vec<_>>(),
            vec![4, 3, 3]
        );
        let mut b = pools[1].alloc().unwrap();
        assert_eq!(b.len(), 0);
        assert_eq!(b.capacity(), 2048 - FRAME_HEADROOM);
        assert!(b.set_len(3));
        b.data_mut().copy_from_slice(&[1, 2, 3]);
        assert!(b.prepend(2));
        b.data_mut()[..2].copy_from_slice(&[9, 9]);
        assert_eq!(b.data(), &[9, 9, 1, 2, 3]);
        assert!(b.strip(4));
        assert_eq!(b.data(), &[3]);
        assert!(!b.prepend(FRAME_HEADROOM + 100));
        assert!(!b.set_len(2048));
        // A frame goes back to whichever pool frees it.
        pools[0].free(b);
        assert_eq!(pools[0].available(), 5);
        assert_eq!(pools[1].available(), 2);
        let a = pools[0].take_addr().unwrap();
        assert_eq!(a % 2048, 0);
        pools[2].put_addr(a + 300);
        assert_eq!(pools[2].available(), 4);
        drop(pools);
        assert_eq!(umem.home.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn a_leaked_frame_keeps_the_region_mapped() {
        let (umem, mut pools) = Umem::new(4, 4096, 1).unwrap();
        let mut b = pools[0].alloc().unwrap();
        assert!(b.set_len(10));
        drop(pools);
        drop(umem);
        // Still readable: the region was not unmapped.
        b.data_mut().fill(7);
        assert_eq!(b.data(), &[7; 10]);
    }

    #[test]
    fn sizes_are_checked() {
        assert!(matches!(
            Umem::new(8, 1500, 1),
            Err(UmemError::FrameSize(1500))
        ));
        assert!(matches!(
            Umem::new(1, 2048, 2),
            Err(UmemError::Frames { .. })
        ));
    }
}
