//! Load balancing by L2 rewrite (LB-1..3, seed 001 FIG. 13/14): source-address ranges,
//! each mapped to a primary destination MAC and substitutes with their states. An uplink
//! packet from a range goes to the primary if it is up, else to the first substitute
//! that is up; with none up it is dropped and counted. States change by publishing a new
//! snapshot, so ranges whose states did not change are not disturbed.

use std::net::Ipv4Addr;

use crate::types::MacAddr;

/// A destination of a range and its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbTarget {
    /// The MAC to send to.
    pub mac: MacAddr,
    /// False when down.
    pub up: bool,
}

/// A source-address range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbRange {
    /// First address of the range.
    pub first: Ipv4Addr,
    /// Last address of the range (inclusive).
    pub last: Ipv4Addr,
    /// The primary, then the substitutes in order of preference.
    pub targets: Vec<LbTarget>,
}

impl LbRange {
    /// The MAC packets from this range go to now: the first target that is up.
    pub fn chosen(&self) -> Option<MacAddr> {
        self.targets.iter().find(|t| t.up).map(|t| t.mac)
    }
}

/// What the range table says about an uplink source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbChoice {
    /// Not in any range: the neighbour table decides.
    NotBalanced,
    /// Send to this MAC.
    To(MacAddr),
    /// In a range whose targets are all down: drop.
    AllDown,
}

/// The ranges, sorted and non-overlapping, with each range's current choice.
#[derive(Clone, Debug, Default)]
pub struct LbTable {
    ranges: Vec<LbRange>,
    /// (first, last, choice) per range, for the per-packet lookup.
    index: Vec<(u32, u32, Option<MacAddr>)>,
}

/// Why a range table could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LbError {
    /// A range whose last address is before its first.
    #[error("range {0}: last address before first")]
    Inverted(usize),
    /// Two ranges share addresses.
    #[error("ranges {0} and {1} overlap")]
    Overlap(usize, usize),
    /// A range without a primary.
    #[error("range {0} has no destination MAC")]
    Empty(usize),
}

impl LbTable {
    /// Builds the table from ranges in any order.
    pub fn new(ranges: Vec<LbRange>) -> Result<LbTable, LbError> {
        for (i, r) in ranges.iter().enumerate() {
            if u32::from(r.last) < u32::from(r.first) {
                return Err(LbError::Inverted(i));
            }
            if r.targets.is_empty() {
                return Err(LbError::Empty(i));
            }
            if let Some(j) = ranges[..i].iter().position(|o| {
                u32::from(o.first) <= u32::from(r.last) && u32::from(r.first) <= u32::from(o.last)
            }) {
                return Err(LbError::Overlap(j, i));
            }
        }
        let mut ranges = ranges;
        ranges.sort_by_key(|r| u32::from(r.first));
        let index = ranges
            .iter()
            .map(|r| (u32::from(r.first), u32::from(r.last), r.chosen()))
            .collect();
        Ok(LbTable { ranges, index })
    }

    /// Where an uplink packet from `src` goes.
    #[inline]
    pub fn choose(&self, src: Ipv4Addr) -> LbChoice {
        if self.index.is_empty() {
            return LbChoice::NotBalanced;
        }
        let a = u32::from(src);
        let i = self.index.partition_point(|(first, _, _)| *first <= a);
        match i.checked_sub(1).map(|i| self.index[i]) {
            Some((_, last, choice)) if a <= last => choice.map_or(LbChoice::AllDown, LbChoice::To),
            _ => LbChoice::NotBalanced,
        }
    }

    /// The ranges, sorted by first address.
    pub fn ranges(&self) -> &[LbRange] {
        &self.ranges
    }

    /// A table with every target whose MAC is `mac` set to `up`, other ranges untouched.
    /// `None` if no target has that MAC.
    pub fn with_state(&self, mac: MacAddr, up: bool) -> Option<LbTable> {
        let mut ranges = self.ranges.clone();
        let mut found = false;
        for t in ranges.iter_mut().flat_map(|r| r.targets.iter_mut()) {
            if t.mac == mac {
                t.up = up;
                found = true;
            }
        }
        found.then(|| LbTable::new(ranges).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);
    const C: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc]);

    fn range(first: [u8; 4], last: [u8; 4], targets: &[(MacAddr, bool)]) -> LbRange {
        LbRange {
            first: Ipv4Addr::from(first),
            last: Ipv4Addr::from(last),
            targets: targets
                .iter()
                .map(|&(mac, up)| LbTarget { mac, up })
                .collect(),
        }
    }

    #[test]
    fn primary_then_substitutes_then_drop() {
        let t = LbTable::new(vec![
            range([10, 10, 0, 128], [10, 10, 0, 255], &[(B, true)]),
            range(
                [10, 10, 0, 0],
                [10, 10, 0, 127],
                &[(A, true), (B, true), (C, true)],
            ),
        ])
        .unwrap();
        let lo = Ipv4Addr::new(10, 10, 0, 5);
        let hi = Ipv4Addr::new(10, 10, 0, 200);
        assert_eq!(t.choose(lo), LbChoice::To(A));
        assert_eq!(t.choose(hi), LbChoice::To(B));
        assert_eq!(t.choose(Ipv4Addr::new(10, 10, 1, 1)), LbChoice::NotBalanced);
        assert_eq!(
            t.choose(Ipv4Addr::new(10, 9, 255, 255)),
            LbChoice::NotBalanced
        );

        let t = t.with_state(A, false).unwrap();
        assert_eq!(t.choose(lo), LbChoice::To(B), "first substitute that is up");
        let t = t.with_state(B, false).unwrap();
        assert_eq!(t.choose(lo), LbChoice::To(C));
        assert_eq!(t.choose(hi), LbChoice::AllDown);
        let t = t.with_state(C, false).unwrap();
        assert_eq!(t.choose(lo), LbChoice::AllDown);
        assert!(t.with_state(MacAddr([2, 9, 9, 9, 9, 9]), true).is_none());
    }

    #[test]
    fn rejects_bad_tables() {
        assert_eq!(
            LbTable::new(vec![
                range([10, 0, 0, 0], [10, 0, 0, 9], &[(A, true)]),
                range([10, 0, 0, 9], [10, 0, 0, 20], &[(B, true)])
            ])
            .unwrap_err(),
            LbError::Overlap(0, 1)
        );
        assert_eq!(
            LbTable::new(vec![range([10, 0, 0, 9], [10, 0, 0, 1], &[(A, true)])]).unwrap_err(),
            LbError::Inverted(0)
        );
    }
}
