//! A port wrapper that loses packets on purpose, for tests of what must survive loss
//! (control protocols, retransmission). Losses are pseudo-random from a seed, so a test
//! that fails fails the same way every time.

use crate::buf::{BufPool, Burst};

use super::{BufOf, Port, PortStats};

/// How often each direction loses a packet, in parts per million.
#[derive(Clone, Copy, Debug, Default)]
pub struct FaultPlan {
    /// Received packets dropped before the worker sees them.
    pub rx_loss_ppm: u32,
    /// Sent packets dropped instead of being sent (reported as sent).
    pub tx_loss_ppm: u32,
    /// Seed of the loss pattern.
    pub seed: u64,
}

/// Wraps a port and loses packets per a [`FaultPlan`].
pub struct FaultPort<P: Port> {
    inner: P,
    plan: FaultPlan,
    state: u64,
    /// Packets lost on receive.
    pub rx_lost: u64,
    /// Packets lost on send.
    pub tx_lost: u64,
}

impl<P: Port> FaultPort<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, plan: FaultPlan) -> Self {
        FaultPort {
            inner,
            plan,
            state: plan.seed | 1,
            rx_lost: 0,
            tx_lost: 0,
        }
    }

    /// The wrapped port.
    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.inner
    }

    fn lose(&mut self, ppm: u32) -> bool {
        if ppm == 0 {
            return false;
        }
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let r = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (r % 1_000_000) < ppm as u64
    }
}

impl<P: Port> Port for FaultPort<P> {
    type Pool = P::Pool;

    fn rx_burst(&mut self, pool: &mut P::Pool, out: &mut Burst<BufOf<P>>, max: usize) {
        let start = out.len();
        self.inner.rx_burst(pool, out, max);
        let mut i = start;
        while i < out.len() {
            if self.lose(self.plan.rx_loss_ppm) {
                let b = out.remove(i);
                pool.free(b);
                self.rx_lost += 1;
            } else {
                i += 1;
            }
        }
    }

    fn tx_burst(&mut self, pool: &mut P::Pool, pkts: &mut Burst<BufOf<P>>) -> usize {
        let before = pkts.len();
        let mut kept: Burst<BufOf<P>> = Burst::new();
        let mut lost = 0;
        for b in pkts.drain(..) {
            if self.lose(self.plan.tx_loss_ppm) {
                pool.free(b);
                lost += 1;
            } else {
                kept.push(b);
            }
        }
        self.tx_lost += lost as u64;
        self.inner.tx_burst(pool, &mut kept);
        // What the inner port refused goes back to the caller to be counted as tx_full;
        // lost packets count as sent, as they would on a wire.
        pkts.extend(kept.drain(..));
        before - pkts.len()
    }

    fn stats(&mut self) -> PortStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapPool;
    use crate::port::memory::MemoryPort;

    #[test]
    fn loses_about_the_planned_share_and_accounts_for_all() {
        let frames = vec![vec![0u8; 60]];
        let inner = MemoryPort::repeating(frames, 100_000);
        let mut port = FaultPort::new(
            inner,
            FaultPlan {
                rx_loss_ppm: 100_000,
                tx_loss_ppm: 0,
                seed: 7,
            },
        );
        let mut pool = HeapPool::new(256);
        let mut burst = Burst::new();
        let mut got = 0u64;
        loop {
            port.rx_burst(&mut pool, &mut burst, 32);
            if burst.is_empty() && port.rx_lost + got == 100_000 {
                break;
            }
            got += burst.len() as u64;
            port.tx_burst(&mut pool, &mut burst);
        }
        assert_eq!(got + port.rx_lost, 100_000);
        assert!((9_000..11_000).contains(&port.rx_lost), "{}", port.rx_lost);
        assert_eq!(pool.available(), 256);
    }
}
