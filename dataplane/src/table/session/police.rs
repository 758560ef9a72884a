//! A byte token bucket: the policer at a session's declared bandwidth, one per direction.
//! Tokens are kept in nano-bytes (bytes x 10^9), so refilling is one multiplication by
//! the rate with no division and no rounding drift.

use crate::time::Instant;

const NANO: u64 = 1_000_000_000;

/// A token bucket of `rate` bytes per second holding at most `burst` bytes (24 bytes of
/// state: rates up to 34 Gbit/s and bursts up to 4 GB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policer {
    /// Bytes per second (0: unlimited).
    rate: u32,
    /// Burst in bytes.
    burst: u32,
    nano_tokens: u64,
    last: Instant,
}

impl Policer {
    /// A full bucket for `bps` bit/s with a burst of `burst_bytes`; `bps == 0` admits
    /// everything.
    pub fn new(bps: u64, burst_bytes: u64, now: Instant) -> Policer {
        let mut p = Policer {
            rate: 0,
            burst: 0,
            nano_tokens: 0,
            last: now,
        };
        p.set_rate(bps, burst_bytes);
        p.nano_tokens = p.cap();
        p
    }

    fn cap(&self) -> u64 {
        self.burst as u64 * NANO
    }

    /// Changes the rate and burst, keeping the tokens (capped at the new burst).
    pub fn set_rate(&mut self, bps: u64, burst_bytes: u64) {
        self.rate = (bps / 8).min(u32::MAX as u64) as u32;
        self.burst = burst_bytes.min(u32::MAX as u64) as u32;
        self.nano_tokens = self.nano_tokens.min(self.cap());
    }

    /// True if unlimited.
    #[inline(always)]
    pub fn is_unlimited(&self) -> bool {
        self.rate == 0
    }

    /// Takes `bytes` tokens if there are enough; false (and nothing taken) otherwise.
    #[inline]
    pub fn admit(&mut self, now: Instant, bytes: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        let rate = self.rate as u64;
        let cap = self.cap();
        if now > self.last {
            // Cap the elapsed time at what refills the whole bucket, so the product
            // cannot overflow.
            let fill_ns = cap / rate + 1;
            let elapsed = (now.0 - self.last.0).min(fill_ns);
            self.nano_tokens = (self.nano_tokens + elapsed * rate).min(cap);
            self.last = now;
        }
        let need = bytes.saturating_mul(NANO);
        if self.nano_tokens >= need {
            self.nano_tokens -= need;
            true
        } else {
            false
        }
    }
}

/// A session's two policers, uplink and downlink, in 32 bytes: the burst is not stored
/// but derived from the rate (`burst_ms` of it, at least 3000 bytes, as the table sets
/// it), and both buckets share the instant they were last refilled. Refilling is linear
/// and capped, so refilling a bucket at an intermediate instant changes nothing: sharing
/// the instant gives the same tokens as a [`Policer`] per direction. A direction that
/// becomes policed by a live change starts with a full bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policers {
    /// Bytes per second per direction (0: unlimited).
    rate: [u32; 2],
    nano_tokens: [u64; 2],
    last: Instant,
}

impl Policers {
    /// Full buckets for `bps` (uplink, downlink) bit/s.
    pub fn new(bps: [u64; 2], burst_ms: u64, now: Instant) -> Policers {
        let mut p = Policers {
            rate: [0; 2],
            nano_tokens: [0; 2],
            last: now,
        };
        for (d, bps) in bps.into_iter().enumerate() {
            p.set_rate(d, bps, burst_ms);
        }
        p
    }

    #[inline(always)]
    fn cap(rate: u32, burst_ms: u64) -> u64 {
        (rate as u64 * burst_ms / 1000).clamp(3000, u32::MAX as u64) * NANO
    }

    /// Changes direction `d`'s rate, keeping its tokens (capped at the new burst).
    pub fn set_rate(&mut self, d: usize, bps: u64, burst_ms: u64) {
        let was = self.rate[d];
        self.rate[d] = (bps / 8).min(u32::MAX as u64) as u32;
        let cap = Self::cap(self.rate[d], burst_ms);
        self.nano_tokens[d] = if was == 0 {
            cap
        } else {
            self.nano_tokens[d].min(cap)
        };
    }

    /// True if direction `d` is unlimited.
    #[inline(always)]
    pub fn is_unlimited(&self, d: usize) -> bool {
        self.rate[d] == 0
    }

    /// Takes `bytes` tokens from direction `d` if there are enough; false (and nothing
    /// taken) otherwise.
    #[inline]
    pub fn admit(&mut self, d: usize, now: Instant, bytes: u64, burst_ms: u64) -> bool {
        if self.rate[d] == 0 {
            return true;
        }
        if now > self.last {
            for k in 0..2 {
                let rate = self.rate[k] as u64;
                if rate == 0 {
                    continue;
                }
                let cap = Self::cap(self.rate[k], burst_ms);
                // Cap the elapsed time at what refills the whole bucket, so the product
                // cannot overflow.
                let elapsed = (now.0 - self.last.0).min(cap / rate + 1);
                self.nano_tokens[k] = (self.nano_tokens[k] + elapsed * rate).min(cap);
            }
            self.last = now;
        }
        let need = bytes.saturating_mul(NANO);
        if self.nano_tokens[d] >= need {
            self.nano_tokens[d] -= need;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant(NANO);
        let mut p = Policer::new(8_000, 1_500, t0); // 1000 B/s, 1500 B burst
        assert!(p.admit(t0, 1_000));
        assert!(!p.admit(t0, 1_000), "500 left");
        assert!(p.admit(t0, 500));
        assert!(!p.admit(Instant(t0.0 + NANO / 2 - 1), 500));
        assert!(
            p.admit(Instant(t0.0 + NANO / 2), 500),
            "refilled 500 in 0.5 s"
        );
        assert!(Policer::new(0, 0, t0).admit(t0, u64::MAX / NANO));
    }

    #[test]
    fn long_run_rate_is_exact() {
        // 10 Mbit/s for 10 s of 1000-byte packets offered at 2x the rate.
        let mut p = Policer::new(10_000_000, 15_000, Instant(0));
        let mut sent = 0u64;
        let gap = 400_000; // ns between packets: 2.5 Mpps of 1000 B = 20 Mbit/s... per 1000 B
        let mut t = 0u64;
        while t < 10 * NANO {
            if p.admit(Instant(t), 1_000) {
                sent += 1_000;
            }
            t += gap;
        }
        let expect = 10_000_000 / 8 * 10 + 15_000;
        assert!(sent.abs_diff(expect) <= 1_000, "{sent} vs {expect}");
    }

    #[test]
    fn pair_matches_two_policers() {
        // Two directions at different rates, packets of either at irregular instants:
        // the pair admits exactly what two separate policers admit.
        let burst_ms = 20;
        let burst = |bps: u64| (bps / 8 * burst_ms / 1000).max(3000);
        let bps = [8_000_000u64, 2_000_000];
        let t0 = Instant(NANO);
        let mut one = [
            Policer::new(bps[0], burst(bps[0]), t0),
            Policer::new(bps[1], burst(bps[1]), t0),
        ];
        let mut pair = Policers::new(bps, burst_ms, t0);
        let mut t = t0.0;
        let mut x = 12345u64;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            t += (x >> 40) % 400_000;
            let d = (x >> 20) as usize & 1;
            let bytes = 64 + (x >> 8) % 1400;
            assert_eq!(
                one[d].admit(Instant(t), bytes),
                pair.admit(d, Instant(t), bytes, burst_ms),
                "at {t}"
            );
        }
        assert!(Policers::new([0, 0], burst_ms, t0).admit(1, t0, u64::MAX / NANO, burst_ms));
    }
}
