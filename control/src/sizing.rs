//! How much memory the configured tables take, checked before any is allocated.
//!
//! Every worker allocates its session table, NAT flow table, neighbour table, packet
//! buffers and rings at start, sized by the config. A size the machine cannot hold used
//! to abort `run` with an allocation failure; now [`Plan::check`] compares the total
//! with the machine's memory first and names the key that takes the most. (The sizing
//! keys also have upper bounds that `check-config` enforces.)

use std::fmt;

use tollgate_dataplane::nat::FlowTable;
use tollgate_dataplane::session::SessionTable;
use tollgate_dataplane::table::neighbor::NeighborTable;
use tollgate_dataplane::{Command, Event, Frame, HeapPool};

use crate::config::Config;

/// What one worker's tables take, by the key that sizes each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Workers, each with the tables below.
    pub workers: usize,
    /// (key, its value, bytes per worker).
    pub parts: Vec<(&'static str, usize, u64)>,
}

/// Why the tables do not fit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the configured tables need {total} ({workers} worker(s) x {per_worker}), more than this machine's {memory} of memory; the largest part is `{key}` = {value} ({part} per worker): lower it"
)]
pub struct TooBig {
    /// The key that takes the most.
    pub key: &'static str,
    /// Its value.
    pub value: usize,
    /// Its bytes per worker.
    pub part: Bytes,
    /// Per worker, all parts.
    pub per_worker: Bytes,
    /// All workers.
    pub total: Bytes,
    /// Workers.
    pub workers: usize,
    /// What the machine has.
    pub memory: Bytes,
}

/// A byte count, shown in KiB, MiB or GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        match self.0 {
            n if n >= 1 << 30 => write!(f, "{:.1} GiB", b / (1u64 << 30) as f64),
            n if n >= 1 << 20 => write!(f, "{:.1} MiB", b / (1u64 << 20) as f64),
            _ => write!(f, "{:.1} KiB", b / 1024.0),
        }
    }
}

impl Plan {
    /// The plan of `cfg`.
    pub fn of(cfg: &Config) -> Plan {
        let s = &cfg.subscribers;
        let en = &cfg.engine;
        let nat_addresses = cfg.nat.addresses.len().max(1);
        let b = |n: usize| n as u64;
        let msg = std::mem::size_of::<Command>().max(std::mem::size_of::<Event>());
        Plan {
            workers: en.workers,
            parts: vec![
                (
                    "subscribers.max_sessions",
                    s.max_sessions,
                    // With `[ipv6]` on, each session's /64 and their index too; with
                    // a `login` service, the per-login stickiness table.
                    b(SessionTable::bytes_for(s.max_sessions)
                        .saturating_add(if cfg.ipv6.enabled {
                            SessionTable::ipv6_bytes_for(s.max_sessions)
                        } else {
                            0
                        })
                        .saturating_add(
                            if cfg.services.iter().any(|v| v.session_type == "login") {
                                SessionTable::sticky_bytes_for(s.max_sessions)
                            } else {
                                0
                            },
                        )),
                ),
                (
                    "subscribers.max_flows",
                    s.max_flows,
                    b(FlowTable::bytes_for(s.max_flows, nat_addresses)),
                ),
                (
                    "arp.table_size",
                    cfg.arp.table_size,
                    b(NeighborTable::bytes_for(cfg.arp.table_size)),
                ),
                (
                    "engine.buffers",
                    en.buffers,
                    b(HeapPool::bytes_for(en.buffers)),
                ),
                (
                    "engine.ring_messages",
                    en.ring_messages,
                    b(en.ring_messages.saturating_mul(2 * msg)),
                ),
                (
                    "engine.ring_frames",
                    en.ring_frames,
                    b(en.ring_frames
                        .saturating_mul(2 * std::mem::size_of::<Frame>())),
                ),
            ],
        }
    }

    /// Bytes per worker.
    pub fn per_worker(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |a, (_, _, n)| a.saturating_add(*n))
    }

    /// Bytes of all workers.
    pub fn total(&self) -> u64 {
        self.per_worker().saturating_mul(self.workers as u64)
    }

    /// Refuses a plan larger than `memory` bytes, naming its largest part.
    pub fn check(&self, memory: u64) -> Result<(), TooBig> {
        if self.total() <= memory {
            return Ok(());
        }
        let (key, value, part) = self.parts.iter().copied().max_by_key(|p| p.2).unwrap_or((
            "subscribers.max_sessions",
            0,
            0,
        ));
        Err(TooBig {
            key,
            value,
            part: Bytes(part),
            per_worker: Bytes(self.per_worker()),
            total: Bytes(self.total()),
            workers: self.workers,
            memory: Bytes(memory),
        })
    }
}

/// The machine's memory from `/proc/meminfo`: (MemTotal, MemAvailable) in bytes, or
/// `None` where it cannot be read.
pub fn machine_memory() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

/// Checks the tables of `workers` workers sized by `cfg` against this machine: an
/// error when they need more than it has, a warning when more than is free now.
pub fn check_machine(cfg: &Config, workers: usize) -> Result<(), TooBig> {
    let plan = Plan {
        workers,
        ..Plan::of(cfg)
    };
    let Some((total, available)) = machine_memory() else {
        return Ok(());
    };
    plan.check(total)?;
    if let Err(e) = plan.check(available) {
        tracing::warn!(
            need = %Bytes(plan.total()),
            available = %Bytes(available),
            largest = e.key,
            "the configured tables need more memory than is free now; they fill as sessions and flows come"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\n[core]\nbackend = \"memory\"\naddress = \"192.0.2.1/24\"\n";

    #[test]
    fn the_plan_is_what_the_tables_allocate() {
        let (n, f, a) = (5000, 7000, 300);
        let st = SessionTable::new(n, 20, 10);
        assert_eq!(SessionTable::bytes_for(n), st.memory_bytes());
        let ft = FlowTable::new(f, 2, (1024, 65535));
        assert!(FlowTable::bytes_for(f, 2) >= ft.memory_bytes());
        assert!(FlowTable::bytes_for(f, 2) - ft.memory_bytes() < 64);
        // hashbrown's own rounding, not observable: a power of two of buckets for
        // twice the entries.
        assert!(NeighborTable::bytes_for(a) >= 2 * a * 8);
    }

    #[test]
    fn the_per_login_table_is_planned_only_with_a_login_service() {
        let sessions = |session_type: &str| {
            let cfg = Config::parse(
                &format!(
                    "{BASE}[[service]]\nname = \"web\"\nvip = \"203.0.113.10\"\nprotocol = \"tcp\"\nport = 80\nsession_type = \"{session_type}\"\n[[service.server]]\naddress = \"192.0.2.21\"\nport = 8080\n"
                ),
                "t",
            )
            .unwrap();
            let plan = Plan::of(&cfg);
            let (_, n, bytes) = plan.parts[0];
            (n, bytes)
        };
        let (n, connection) = sessions("connection");
        assert_eq!(connection, SessionTable::bytes_for(n) as u64);
        let (_, login) = sessions("login");
        assert_eq!(login - connection, SessionTable::sticky_bytes_for(n) as u64);
    }

    #[test]
    fn a_plan_too_big_for_the_machine_names_its_largest_key() {
        let cfg = Config::parse(
            &format!("{BASE}[engine]\nworkers = 4\n[subscribers]\nmax_sessions = 16000000\n"),
            "t",
        )
        .unwrap();
        let plan = Plan::of(&cfg);
        assert_eq!(plan.workers, 4);
        let e = plan.check(8 << 30).unwrap_err();
        assert_eq!(e.key, "subscribers.max_sessions");
        assert_eq!(e.value, 16_000_000);
        let msg = e.to_string();
        assert!(
            msg.contains("more than this machine's 8.0 GiB of memory"),
            "{msg}"
        );
        assert!(
            msg.contains("`subscribers.max_sessions` = 16000000"),
            "{msg}"
        );
        assert!(plan.check(64 << 30).is_ok(), "{}", Bytes(plan.total()));
        let small = Plan::of(&Config::parse(BASE, "t").unwrap());
        assert!(
            small.total() < 256 << 20,
            "defaults: {}",
            Bytes(small.total())
        );
    }
}
