//! The consolidation engine (TUN-3, seed 000 claims 1-16), as pure functions over one
//! customer's tunnels: where a new session goes, and which sessions to move so the
//! customer's sessions sit in as few tunnels as the capacities allow.
//!
//! A tunnel is a [`Bin`] with a capacity in sessions and in bandwidth (the sum of its
//! sessions' service levels); a session is an item with its current level (TUN-4). The
//! engine runs on a copy and returns the moves; the caller carries them out one at a
//! time, make-before-break, and asks again when the table changed. A plan is built from
//! these steps, repeated until none applies:
//!
//! 0. *Relieve*: a tunnel over its bandwidth (a level went up) sheds its largest session
//!    into the tunnel with the least room that fits it, or into a new tunnel.
//! 1. *Empty a tunnel*: the least loaded tunnel whose sessions all fit into the others'
//!    spare room (best fit, largest first) is emptied; the caller tears it down.
//! 2. *Refill* (claims 3-5, 13-15): into the tunnel where a session just ended, the
//!    largest session that fits, taken from the least loaded other tunnel.
//! 3. *Spare bandwidth* (claims 6-8): a session moves into a tunnel whose spare room
//!    covers its level, from a tunnel holding no more sessions than the target.
//!
//! Every move of steps 1-3 goes from a tunnel with no more sessions than its target, so
//! the sum of squared session counts grows with each: a plan always ends. With equal
//! capacities and levels that fit evenly (session counts only, or one level for all),
//! step 1 alone reaches the minimum, ceil(sessions / capacity): when no tunnel can be
//! emptied the others' room is less than the smallest tunnel's sessions. With unequal
//! levels the minimum is a bin-packing problem; the plan is a good heuristic, not always
//! optimal (the tests measure how often, against a brute-force search).

/// A tunnel's capacity. Zero means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Sessions it may carry.
    pub sessions: u32,
    /// Sum of its sessions' service levels, bit/s.
    pub bandwidth: u64,
}

/// One tunnel of a customer, with its sessions (id, service level).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bin {
    /// The tunnel.
    pub id: u16,
    /// Its capacity.
    pub capacity: Capacity,
    /// Its sessions: (session, service level in bit/s).
    pub items: Vec<(u32, u64)>,
}

impl Bin {
    /// Bandwidth in use.
    pub fn used(&self) -> u64 {
        self.items.iter().map(|i| i.1).sum()
    }

    /// True if a session of `level` fits in the room left.
    pub fn fits(&self, level: u64) -> bool {
        (self.capacity.sessions == 0 || (self.items.len() as u32) < self.capacity.sessions)
            && (self.capacity.bandwidth == 0 || self.used() + level <= self.capacity.bandwidth)
    }

    /// True if the sessions are over the bandwidth.
    pub fn over(&self) -> bool {
        self.capacity.bandwidth != 0 && self.used() > self.capacity.bandwidth
    }

    /// Room left, as (sessions, bandwidth); unlimited is u64::MAX.
    fn room(&self) -> (u64, u64) {
        let s = match self.capacity.sessions {
            0 => u64::MAX,
            c => (c as u64).saturating_sub(self.items.len() as u64),
        };
        let b = match self.capacity.bandwidth {
            0 => u64::MAX,
            c => c.saturating_sub(self.used()),
        };
        (s, b)
    }

    /// Load, for ordering: sessions, then bandwidth.
    fn load(&self) -> (usize, u64) {
        (self.items.len(), self.used())
    }
}

/// Where a session goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// An existing tunnel.
    Tunnel(u16),
    /// A tunnel to be set up.
    New,
}

/// A session to move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    /// The session.
    pub item: u32,
    /// The tunnel it is in.
    pub from: u16,
    /// Where it goes.
    pub to: Target,
}

/// The tunnel a new session of `level` goes into, `None` if it needs a new tunnel. A
/// consolidating customer's session goes into the tunnel with the least room that fits
/// (fewest tunnels); anyone else's into the least loaded tunnel that fits.
pub fn place(bins: &[Bin], level: u64, consolidate: bool) -> Option<u16> {
    let fitting = bins.iter().filter(|b| b.fits(level));
    if consolidate {
        fitting.min_by_key(|b| (b.room(), b.id)).map(|b| b.id)
    } else {
        fitting.min_by_key(|b| (b.load(), b.id)).map(|b| b.id)
    }
}

/// The moves that gather the sessions of `bins` into fewer tunnels. `freed` is the
/// tunnel where a session just ended, refilled first. A customer without the
/// consolidation service only gets step 0 (`consolidate` false).
pub fn plan(bins: &[Bin], freed: Option<u16>, consolidate: bool) -> Vec<Move> {
    let mut bins = bins.to_vec();
    let mut moves = Vec::new();
    let mut freed = freed;
    // Each step strictly improves a bounded measure; the cap is a belt over the braces.
    for _ in 0..10_000 {
        let step = relieve(&bins).or_else(|| {
            if !consolidate {
                return None;
            }
            empty_one(&bins)
                .or_else(|| freed.take().and_then(|t| refill(&bins, t)))
                .or_else(|| spare(&bins).map(|m| vec![m]))
        });
        let Some(step) = step else { break };
        for m in step {
            apply(&mut bins, m);
            moves.push(m);
        }
    }
    moves
}

fn apply(bins: &mut Vec<Bin>, m: Move) {
    let Some(from) = bins.iter_mut().find(|b| b.id == m.from) else {
        return;
    };
    let Some(i) = from.items.iter().position(|it| it.0 == m.item) else {
        return;
    };
    let item = from.items.remove(i);
    match m.to {
        Target::Tunnel(t) => {
            if let Some(to) = bins.iter_mut().find(|b| b.id == t) {
                to.items.push(item);
            }
        }
        // A new tunnel, with the capacity of the one the session left: numbered past
        // every real id so later steps can use it.
        Target::New => {
            let cap = bins
                .iter()
                .find(|b| b.id == m.from)
                .map_or(Capacity::default(), |b| b.capacity);
            let id = bins.iter().map(|b| b.id).max().unwrap_or(0).wrapping_add(1);
            bins.push(Bin {
                id,
                capacity: cap,
                items: vec![item],
            });
        }
    }
    bins.retain(|b| !b.items.is_empty());
}

/// Step 0: the largest session of an overloaded tunnel goes where it fits best, else to
/// a new tunnel.
fn relieve(bins: &[Bin]) -> Option<Vec<Move>> {
    let b = bins.iter().find(|b| b.over() && b.items.len() > 1)?;
    let &(item, level) = b.items.iter().max_by_key(|i| (i.1, i.0))?;
    let to = bins
        .iter()
        .filter(|o| o.id != b.id && o.fits(level))
        .min_by_key(|o| (o.room(), o.id))
        .map_or(Target::New, |o| Target::Tunnel(o.id));
    Some(vec![Move {
        item,
        from: b.id,
        to,
    }])
}

/// Step 1: empties the least loaded tunnel whose sessions all fit elsewhere.
fn empty_one(bins: &[Bin]) -> Option<Vec<Move>> {
    let mut order: Vec<&Bin> = bins.iter().filter(|b| !b.items.is_empty()).collect();
    order.sort_by_key(|b| (b.load(), b.id));
    for src in order {
        let mut others: Vec<Bin> = bins.iter().filter(|b| b.id != src.id).cloned().collect();
        let mut items = src.items.clone();
        items.sort_by_key(|i| (std::cmp::Reverse(i.1), i.0));
        let mut moves = Vec::new();
        for (item, level) in items {
            let Some(to) = others
                .iter_mut()
                .filter(|o| o.fits(level) && !o.items.is_empty())
                .min_by_key(|o| (o.room(), o.id))
            else {
                moves.clear();
                break;
            };
            to.items.push((item, level));
            moves.push(Move {
                item,
                from: src.id,
                to: Target::Tunnel(to.id),
            });
        }
        if !moves.is_empty() {
            return Some(moves);
        }
    }
    None
}

/// Step 2: into the tunnel where a session ended, the largest session that fits, from
/// the least loaded other tunnel holding no more sessions than it.
fn refill(bins: &[Bin], target: u16) -> Option<Vec<Move>> {
    let t = bins
        .iter()
        .find(|b| b.id == target && !b.items.is_empty())?;
    let mut sources: Vec<&Bin> = bins
        .iter()
        .filter(|b| b.id != t.id && !b.items.is_empty() && b.items.len() <= t.items.len())
        .collect();
    sources.sort_by_key(|b| (b.load(), b.id));
    for s in sources {
        if let Some(&(item, _)) = s
            .items
            .iter()
            .filter(|i| t.fits(i.1))
            .max_by_key(|i| (i.1, std::cmp::Reverse(i.0)))
        {
            return Some(vec![Move {
                item,
                from: s.id,
                to: Target::Tunnel(t.id),
            }]);
        }
    }
    None
}

/// Step 3: the fullest tunnel with spare room takes the largest session that fits from
/// the least loaded tunnel holding no more sessions than it.
fn spare(bins: &[Bin]) -> Option<Move> {
    let mut targets: Vec<&Bin> = bins.iter().filter(|b| !b.items.is_empty()).collect();
    targets.sort_by_key(|b| (std::cmp::Reverse(b.load()), b.id));
    for t in targets {
        if let Some(m) = refill(bins, t.id) {
            return m.into_iter().next();
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const M: u64 = 1_000_000;

    fn bin(id: u16, sessions: u32, bandwidth: u64, items: &[(u32, u64)]) -> Bin {
        Bin {
            id,
            capacity: Capacity {
                sessions,
                bandwidth,
            },
            items: items.to_vec(),
        }
    }

    fn run(bins: &[Bin], freed: Option<u16>) -> (Vec<Bin>, Vec<Move>) {
        let moves = plan(bins, freed, true);
        let mut b = bins.to_vec();
        for m in &moves {
            apply(&mut b, *m);
        }
        b.retain(|b| !b.items.is_empty());
        (b, moves)
    }

    #[test]
    fn placement_packs_or_spreads() {
        let bins = [
            bin(1, 4, 0, &[(1, M), (2, M)]),
            bin(2, 4, 0, &[(3, M), (4, M), (5, M)]),
        ];
        assert_eq!(place(&bins, M, true), Some(2), "the fullest that fits");
        assert_eq!(place(&bins, M, false), Some(1), "the least loaded");
        let full = [bin(1, 1, 0, &[(1, M)])];
        assert_eq!(place(&full, M, true), None);
        let bw = [
            bin(1, 0, 10 * M, &[(1, 8 * M)]),
            bin(2, 0, 10 * M, &[(2, 5 * M)]),
        ];
        assert_eq!(place(&bw, 2 * M, true), Some(1));
        assert_eq!(place(&bw, 3 * M, true), Some(2));
    }

    /// Claims 3-5: a session ends in tunnel 1; a session of tunnel 2 fills the freed
    /// room; at the next end tunnel 2 empties and is torn down.
    #[test]
    fn refill_the_freed_tunnel_then_empty_the_other() {
        let bins = [
            bin(1, 4, 0, &[(1, M), (2, M), (3, M)]),
            bin(2, 4, 0, &[(5, M), (6, M)]),
        ];
        let (after, moves) = run(&bins, Some(1));
        assert_eq!(
            moves[0],
            Move {
                item: 5,
                from: 2,
                to: Target::Tunnel(1)
            }
        );
        assert_eq!(after.len(), 2);
        let mut bins = after;
        bins[0].items.retain(|i| i.0 != 1);
        let (after, moves) = run(&bins, Some(1));
        assert_eq!(
            moves,
            [Move {
                item: 6,
                from: 2,
                to: Target::Tunnel(1)
            }]
        );
        assert_eq!(after.len(), 1);
    }

    /// Claims 6-8: tunnel 1 has spare bandwidth for the session of tunnel 2.
    #[test]
    fn spare_bandwidth_takes_a_session() {
        let bins = [
            bin(1, 0, 10 * M, &[(1, 4 * M), (2, 2 * M)]),
            bin(2, 0, 10 * M, &[(3, 4 * M)]),
        ];
        let (after, moves) = run(&bins, None);
        assert_eq!(moves.len(), 1);
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].used(), 10 * M);
        // Not when it would not fit.
        let bins = [
            bin(1, 0, 10 * M, &[(1, 4 * M), (2, 3 * M)]),
            bin(2, 0, 10 * M, &[(3, 4 * M)]),
        ];
        assert!(plan(&bins, None, true).is_empty());
        assert!(plan(&bins, Some(1), true).is_empty());
    }

    #[test]
    fn an_overloaded_tunnel_sheds_even_without_the_service() {
        let bins = [bin(1, 0, 10 * M, &[(1, 8 * M), (2, 5 * M)])];
        assert_eq!(
            plan(&bins, None, false),
            [Move {
                item: 1,
                from: 1,
                to: Target::New
            }]
        );
        let bins = [
            bin(1, 0, 10 * M, &[(1, 8 * M), (2, 5 * M)]),
            bin(2, 0, 10 * M, &[(3, M)]),
        ];
        assert_eq!(
            plan(&bins, None, false),
            [Move {
                item: 1,
                from: 1,
                to: Target::Tunnel(2)
            }]
        );
        // Without the service nothing else moves.
        let bins = [bin(1, 4, 0, &[(1, M)]), bin(2, 4, 0, &[(2, M)])];
        assert!(plan(&bins, Some(1), false).is_empty());
    }

    // ---- brute force: the fewest tunnels a set of levels fits in ----

    /// The minimum number of bins of capacity `cap` holding `levels`, by exhaustive
    /// search over set partitions (each item goes into a bin used so far or a new one).
    pub(crate) fn brute_force_min(levels: &[u64], cap: Capacity) -> usize {
        fn go(
            i: usize,
            levels: &[u64],
            cap: Capacity,
            bins: &mut Vec<(u32, u64)>,
            best: &mut usize,
        ) {
            if bins.len() >= *best {
                return;
            }
            if i == levels.len() {
                *best = bins.len();
                return;
            }
            let l = levels[i];
            for b in 0..bins.len() {
                let (n, u) = bins[b];
                if (cap.sessions == 0 || n < cap.sessions)
                    && (cap.bandwidth == 0 || u + l <= cap.bandwidth)
                {
                    bins[b] = (n + 1, u + l);
                    go(i + 1, levels, cap, bins, best);
                    bins[b] = (n, u);
                }
            }
            bins.push((1, l));
            go(i + 1, levels, cap, bins, best);
            bins.pop();
        }
        let mut best = levels.len().max(1) + 1;
        if levels.is_empty() {
            return 0;
        }
        go(0, levels, cap, &mut Vec::new(), &mut best);
        best
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A random customer: items placed one by one, then a random share of them ended
    /// (each end re-planned, like the engine does), leaving a fragmented table.
    fn scenario(r: &mut Rng, cap: Capacity, ladder: &[u64]) -> Vec<Bin> {
        let n = 3 + r.below(8) as u32;
        let mut bins: Vec<Bin> = Vec::new();
        for item in 0..n {
            let level = ladder[r.below(ladder.len() as u64) as usize];
            // Spread placement (as for a customer before it took the service), so the
            // start is fragmented.
            match place(&bins, level, false) {
                Some(t) => bins
                    .iter_mut()
                    .find(|b| b.id == t)
                    .unwrap()
                    .items
                    .push((item, level)),
                None => bins.push(Bin {
                    id: bins.len() as u16 + 1,
                    capacity: cap,
                    items: vec![(item, level)],
                }),
            }
        }
        for b in &mut bins {
            b.items.retain(|_| r.below(3) != 0);
        }
        bins.retain(|b| !b.items.is_empty());
        bins
    }

    fn fixpoint(bins: &[Bin]) -> Vec<Bin> {
        let (after, _) = run(bins, None);
        assert!(
            plan(&after, None, true).is_empty(),
            "a plan reaches a fixpoint"
        );
        for b in &after {
            assert!(!b.over());
            assert!(b.capacity.sessions == 0 || b.items.len() as u32 <= b.capacity.sessions);
        }
        after
    }

    /// Session-count capacity (or one level for all): the plan always reaches the
    /// brute-force minimum.
    #[test]
    fn equal_sizes_reach_the_minimum() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..500 {
            let cap = Capacity {
                sessions: 2 + r.below(4) as u32,
                bandwidth: 0,
            };
            let bins = scenario(&mut r, cap, &[M]);
            let items: Vec<u64> = bins
                .iter()
                .flat_map(|b| b.items.iter().map(|i| i.1))
                .collect();
            let after = fixpoint(&bins);
            let got: usize = after.iter().filter(|b| !b.items.is_empty()).count();
            assert_eq!(
                got,
                brute_force_min(&items, cap),
                "round {round}: {bins:?} -> {after:?}"
            );
        }
    }

    /// Bandwidth capacity with a ladder of levels: measure how often the plan reaches
    /// the brute-force minimum, and that it is never more than one tunnel above it.
    #[test]
    fn unequal_levels_against_brute_force() {
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let ladder = [M, 2 * M, 5 * M];
        let (mut optimal, mut rounds) = (0, 0);
        for round in 0..500 {
            let cap = Capacity {
                sessions: 0,
                bandwidth: 10 * M,
            };
            let bins = scenario(&mut r, cap, &ladder);
            let items: Vec<u64> = bins
                .iter()
                .flat_map(|b| b.items.iter().map(|i| i.1))
                .collect();
            let after = fixpoint(&bins);
            let got = after.iter().filter(|b| !b.items.is_empty()).count();
            let best = brute_force_min(&items, cap);
            assert!(
                got <= best + 1,
                "round {round}: {got} tunnels, minimum {best}: {bins:?}"
            );
            rounds += 1;
            optimal += (got == best) as u32;
        }
        eprintln!(
            "bandwidth ladder 1/2/5 of 10 Mbit/s: minimum reached in {optimal}/{rounds} random tables"
        );
        assert!(optimal * 100 >= rounds * 90, "{optimal}/{rounds}");
    }

    #[test]
    fn brute_force_knows_simple_cases() {
        let c = Capacity {
            sessions: 0,
            bandwidth: 10,
        };
        assert_eq!(brute_force_min(&[5, 5, 5, 5], c), 2);
        assert_eq!(brute_force_min(&[6, 5, 5, 4], c), 2);
        assert_eq!(brute_force_min(&[7, 7, 7], c), 3);
        assert_eq!(brute_force_min(&[], c), 0);
        let s = Capacity {
            sessions: 4,
            bandwidth: 0,
        };
        assert_eq!(brute_force_min(&[1; 9], s), 3);
    }
}
