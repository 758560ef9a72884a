//! Human-readable tables for `tollgate ctl` answers. The client renders the typed
//! answer ([`crate::proto::Answer`]) it read from the same JSON a script gets with
//! `--json`, so the two never disagree.

use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;
use tollgate_control_core::rating::Invoice;
use tollgate_control_core::rating::money::format_minor;

use crate::proto::{self, Answer};

/// Renders an answer for a terminal.
pub fn render(answer: &Answer) -> String {
    match answer {
        Answer::Help(h) => help(h),
        Answer::Status(s) => key_values(s),
        Answer::Ports(p) => ports(p),
        Answer::Workers(w) => workers(w),
        Answer::Counters(c) => counters(c),
        Answer::Neighbors(n) => neighbors(n),
        Answer::Sessions(s) => sessions(s),
        Answer::Session(s) => session(s),
        Answer::Services(s) => services(s),
        Answer::Lb(l) => lb(l),
        Answer::Health(h) => health(h),
        Answer::Cluster(c) => cluster(c),
        Answer::Pools(p) => pools(p),
        Answer::Subscribers(s) => subscribers(s),
        Answer::LoggedIn(l) => key_values(l),
        Answer::Logins(l) => key_values(l),
        Answer::Tunnels(t) => crate::ctl::l2tp::render_tunnels(t),
        Answer::Tunnel(t) => crate::ctl::l2tp::render_tunnel(t),
        Answer::BillingStatus(_)
        | Answer::Closed(_)
        | Answer::Invoice(_)
        | Answer::Invoices(_)
        | Answer::Rerated(_)
        | Answer::Imported(_) => crate::ctl::billing::render(answer),
        other => pretty(other),
    }
}

/// Any answer as indented JSON, its keys in order.
pub(crate) fn pretty<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_default()
        + "\n"
}

/// Lays out rows under headers; columns whose every cell is a number are right-aligned.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut width: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    let mut numeric = vec![true; n];
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            width[i] = width[i].max(c.len());
            if c.parse::<f64>().is_err() && c != "-" {
                numeric[i] = false;
            }
        }
    }
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if numeric[i] && !rows.is_empty() {
                let _ = write!(s, "{c:>w$}", w = width[i]);
            } else {
                let _ = write!(s, "{c:<w$}", w = width[i]);
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied(), &mut out);
    for r in rows {
        line(&mut r.iter().map(String::as_str), &mut out);
    }
    out
}

/// A value as a table cell: `-` for none, strings unquoted, numbers as JSON writes them.
pub(crate) trait Cell {
    /// The cell's text.
    fn cell(&self) -> String;
}

macro_rules! display_cell {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            fn cell(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
display_cell!(u16, u32, u64, usize, i32, i64, bool, str, String);

impl Cell for f64 {
    fn cell(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl<T: Cell> Cell for Option<T> {
    fn cell(&self) -> String {
        self.as_ref().map_or_else(|| "-".into(), Cell::cell)
    }
}

impl Cell for Value {
    fn cell(&self) -> String {
        match self {
            Value::Null => "-".into(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// The fields of a reply struct, `name  value` a line, in the order of their names.
fn fields<T: Serialize>(data: &T) -> Vec<(String, Value)> {
    match serde_json::to_value(data) {
        Ok(Value::Object(o)) => o.into_iter().collect(),
        _ => Vec::new(),
    }
}

fn key_values<T: Serialize>(data: &T) -> String {
    let f = fields(data);
    let w = f.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    f.iter()
        .map(|(k, v)| format!("{k:<w$}  {}\n", v.cell()))
        .collect()
}

fn subscribers(list: &[crate::store::SubscriberView]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.user_id.clone(),
                if s.has_password { "set" } else { "-" }.into(),
                s.identifiers.join(", "),
            ]
        })
        .collect();
    table(&["USER", "PASSWORD", "IDENTIFIERS"], &rows)
}

fn health(list: &[proto::HealthTarget]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            vec![
                t.target.cell(),
                t.address.cell(),
                t.check.cell(),
                t.state.cell(),
                t.rtt_us.cell(),
                t.passed.cell(),
                t.failed.cell(),
                t.last_error.cell(),
            ]
        })
        .collect();
    table(
        &[
            "TARGET",
            "ADDRESS",
            "CHECK",
            "STATE",
            "RTT-US",
            "PASSED",
            "FAILED",
            "LAST ERROR",
        ],
        &rows,
    )
}

fn cluster(c: &crate::database::cluster::ClusterView) -> String {
    let mut out = format!(
        "node {} ({}), heartbeat {} ms, lease {} ms; heartbeats {} ok {} failed, leases lost {}, nodes taken over {} ({} sessions)\n\n",
        c.node,
        if c.reachable {
            "database reachable"
        } else {
            "database NOT reachable"
        },
        c.heartbeat_ms,
        c.lease_ms,
        c.heartbeats,
        c.failed_heartbeats,
        c.leases_lost,
        c.takeovers,
        c.sessions_taken,
    );
    if c.placement == crate::database::placement::Placement::SourceRange {
        out.insert_str(
            out.len() - 2,
            &format!(
                "\nplacement source-range: {} logins placed ({} failed), {} placed here by others or itself",
                c.placements, c.placements_failed, c.placements_claimed
            ),
        );
    }
    let rows: Vec<Vec<String>> = c
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.node.cell(),
                n.state.cell(),
                unix_ms_utc(n.heartbeat_unix_ms),
                unix_ms_utc(n.lease_until_unix_ms),
                n.sessions.cell(),
                n.taken_by.cell(),
            ]
        })
        .collect();
    out += &table(
        &[
            "NODE",
            "STATE",
            "HEARTBEAT",
            "LEASE UNTIL",
            "SESSIONS",
            "TAKEN BY",
        ],
        &rows,
    );
    let rows: Vec<Vec<String>> = c
        .ranges
        .iter()
        .map(|r| {
            vec![
                r.pool.cell(),
                format!("{}-{}", r.first, r.last),
                r.node.cell(),
                r.size.cell(),
                r.assigned.cell(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out += "\n";
        out += &table(&["POOL", "RANGE", "NODE", "SIZE", "ASSIGNED"], &rows);
    }
    for n in &c.next {
        out += &format!(
            "next login of pool {} (steering by source range): {} range from {}\n",
            n.pool, n.node, n.first
        );
    }
    out
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS.mmm` UTC.
fn unix_ms_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

fn pools(list: &[proto::Pool]) -> String {
    let mut rows = Vec::new();
    for p in list {
        for r in &p.ranges {
            rows.push(vec![
                p.pool.cell(),
                format!("{}-{}", r.first, r.last),
                r.size.cell(),
                r.assigned.cell(),
                r.node.cell(),
                r.node_state.cell(),
            ]);
        }
    }
    table(
        &["POOL", "RANGE", "SIZE", "ASSIGNED", "NODE", "NODE STATE"],
        &rows,
    )
}

fn help(lines: &[proto::HelpLine]) -> String {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|c| vec![c.command.clone(), c.description.clone()])
        .collect();
    table(&["COMMAND", "WHAT IT SHOWS"], &rows)
}

fn ports(list: &[proto::Port]) -> String {
    let headers = [
        "SIDE",
        "BACKEND",
        "INTERFACE",
        "MAC",
        "ADDRESS",
        "RX-PKTS",
        "RX-BYTES",
        "TX-PKTS",
        "TX-BYTES",
        "RX-DROPPED",
        "RX-LATE",
        "MAX-WAIT-MS",
        "TX-ERRORS",
    ];
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            vec![
                p.side.cell(),
                p.backend.cell(),
                p.interface.cell(),
                p.mac.cell(),
                p.address.cell(),
                p.rx_packets.cell(),
                p.rx_bytes.cell(),
                p.tx_packets.cell(),
                p.tx_bytes.cell(),
                p.rx_dropped.cell(),
                p.rx_late.cell(),
                p.rx_max_wait_ms.cell(),
                p.tx_errors.cell(),
            ]
        })
        .collect();
    let mut out = table(&headers, &rows);
    // Why frames were lost, one line per side that lost any.
    for p in list {
        if let Some(why) = &p.rx_loss {
            out.push_str(&format!("{}: {why}\n", p.side));
        }
    }
    out
}

fn workers(list: &[proto::Worker]) -> String {
    let headers = [
        "WORKER",
        "CPU",
        "POLLS",
        "BUSY%",
        "RX-PKTS",
        "TX-PKTS",
        "DROPS",
        "HELD",
        "NEIGHBORS",
        "SESSIONS",
        "FLOWS",
    ];
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|w| {
            let r = w.report.as_ref();
            vec![
                w.worker.cell(),
                w.cpu.cell(),
                r.map(|r| r.polls).cell(),
                r.map(|r| r.busy_pct).cell(),
                r.map(|r| r.rx_packets).cell(),
                r.map(|r| r.tx_packets).cell(),
                r.map(|r| r.drops).cell(),
                r.map(|r| r.held).cell(),
                r.map(|r| r.neighbors).cell(),
                r.map(|r| r.sessions).cell(),
                r.map(|r| r.flows).cell(),
            ]
        })
        .collect();
    table(&headers, &rows)
}

fn neighbors(list: &[proto::Neighbor]) -> String {
    if list.is_empty() {
        return "no neighbours\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|n| {
            vec![
                n.address.cell(),
                n.side.cell(),
                n.mac.cell(),
                n.state.cell(),
                n.age_s.cell(),
            ]
        })
        .collect();
    table(&["ADDRESS", "SIDE", "MAC", "STATE", "AGE-S"], &rows)
}

fn sessions(list: &[proto::SessionView]) -> String {
    let open: Vec<&proto::OpenSession> = list
        .iter()
        .filter_map(|s| match s {
            proto::SessionView::Open(o) => Some(&**o),
            _ => None,
        })
        .collect();
    if open.is_empty() {
        return "no sessions\n".into();
    }
    let rows: Vec<Vec<String>> = open
        .iter()
        .map(|s| {
            let c = s.counters.as_ref();
            vec![
                s.session.cell(),
                s.user.cell(),
                s.address.cell(),
                s.mac.cell(),
                s.worker.cell(),
                s.age_s.cell(),
                c.map(|c| c.tx_packets).cell(),
                c.map(|c| c.tx_bytes).cell(),
                c.map(|c| c.rx_packets).cell(),
                c.map(|c| c.rx_bytes).cell(),
            ]
        })
        .collect();
    table(
        &[
            "SESSION", "USER", "ADDRESS", "MAC", "WORKER", "AGE-S", "TX-PKTS", "TX-BYTES",
            "RX-PKTS", "RX-BYTES",
        ],
        &rows,
    )
}

/// One session: its fields by name, lists joined, then its counters.
fn session(s: &proto::SessionView) -> String {
    let mut out = String::new();
    let f = fields(s);
    let w = f.iter().map(|(k, _)| k.len()).max().unwrap_or(0).max(10);
    for (k, v) in &f {
        if k.starts_with("counters") {
            continue;
        }
        let shown = match v {
            Value::Array(a) => a.iter().map(Cell::cell).collect::<Vec<_>>().join(", "),
            other => other.cell(),
        };
        let _ = writeln!(out, "{k:<w$}  {shown}");
    }
    // Both families, then (a session with IPv6) each family's share.
    let counters = match s {
        proto::SessionView::Open(o) => vec![
            ("", o.counters),
            ("_ipv4", o.counters_ipv4),
            ("_ipv6", o.counters_ipv6),
        ],
        proto::SessionView::Ended(e) => vec![("", Some(e.counters))],
        proto::SessionView::Unknown { .. } | proto::SessionView::Switched(_) => vec![],
    };
    for (family, c) in counters {
        let Some(c) = c else { continue };
        for (k, v) in [
            ("rx_bytes", c.rx_bytes),
            ("rx_packets", c.rx_packets),
            ("tx_bytes", c.tx_bytes),
            ("tx_packets", c.tx_packets),
        ] {
            let k = format!("{k}{family}");
            let _ = writeln!(out, "{k:<w$}  {v}");
        }
    }
    out
}

fn services(list: &[proto::Service]) -> String {
    let mut rows = Vec::new();
    for s in list {
        for r in &s.servers {
            rows.push(vec![
                s.service.cell(),
                format!("{}:{}/{}", s.vip, s.port, s.protocol),
                s.policy.cell(),
                s.session_type.cell(),
                r.server.cell(),
                format!("{}:{}", r.address, r.port),
                r.state.cell(),
                r.weight.cell(),
                r.priority.cell(),
                r.response_us.cell(),
                r.cpu_load.cell(),
            ]);
        }
    }
    if rows.is_empty() {
        return "no services\n".into();
    }
    table(
        &[
            "SERVICE",
            "VIP",
            "POLICY",
            "SESSION-TYPE",
            "#",
            "SERVER",
            "STATE",
            "WEIGHT",
            "PRIO",
            "RESP-US",
            "CPU%",
        ],
        &rows,
    )
}

fn lb(list: &[proto::LbRange]) -> String {
    let mut rows = Vec::new();
    for r in list {
        for (i, t) in r.targets.iter().enumerate() {
            rows.push(vec![
                format!("{}-{}", r.first, r.last),
                if i == 0 {
                    "primary".into()
                } else {
                    format!("substitute {i}")
                },
                t.mac.cell(),
                t.state.cell(),
                if r.chosen.as_deref() == Some(t.mac.as_str()) {
                    "*".into()
                } else {
                    String::new()
                },
            ]);
        }
    }
    if rows.is_empty() {
        return "no load-balancing ranges\n".into();
    }
    table(&["RANGE", "ROLE", "MAC", "STATE", "IN USE"], &rows)
}

/// The `show counters` tables; also printed by `tollgate replay`.
pub fn counters(data: &proto::Counters) -> String {
    let mut out = String::new();
    let side_rows: Vec<Vec<String>> = [("access", &data.sides.access), ("core", &data.sides.core)]
        .iter()
        .map(|(s, v)| {
            vec![
                s.to_string(),
                v.rx_packets.cell(),
                v.rx_bytes.cell(),
                v.tx_packets.cell(),
                v.tx_bytes.cell(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["SIDE", "RX-PKTS", "RX-BYTES", "TX-PKTS", "TX-BYTES"],
        &side_rows,
    ));

    out.push('\n');
    let drops: Vec<Vec<String>> = data
        .drops
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| vec![k.clone(), v.cell()])
        .collect();
    if drops.is_empty() {
        out.push_str("no drops\n");
    } else {
        out.push_str(&table(&["DROP REASON", "PACKETS"], &drops));
        out.push_str("(reasons not listed are 0; --json lists all)\n");
    }

    out.push('\n');
    let engine: Vec<Vec<String>> = data
        .engine
        .iter()
        .map(|(k, v)| vec![k.clone(), v.cell()])
        .collect();
    out.push_str(&table(&["ENGINE", "COUNT"], &engine));
    out.push('\n');
    let control: Vec<Vec<String>> = fields(&data.control)
        .into_iter()
        .map(|(k, v)| vec![k, v.cell()])
        .collect();
    out.push_str(&table(&["CONTROL", "COUNT"], &control));
    // PPPoE and PPP (issue 14): the non-zero ones, as for drops.
    let pppoe: Vec<Vec<String>> = data
        .pppoe
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| vec![k.clone(), v.cell()])
        .collect();
    if !pppoe.is_empty() {
        out.push('\n');
        out.push_str(&table(&["PPPOE", "COUNT"], &pppoe));
    }
    // The DHCPv4 server (issue 16): the non-zero ones.
    let dhcp: Vec<Vec<String>> = data
        .dhcp
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| vec![k.clone(), v.cell()])
        .collect();
    if !dhcp.is_empty() {
        out.push('\n');
        out.push_str(&table(&["DHCP", "COUNT"], &dhcp));
    }
    out
}

/// The invoice for a terminal.
pub fn invoice(inv: &Invoice) -> String {
    let money = |a: i64| format_minor(a, inv.minor_digits);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "invoice  {} {}{}",
        inv.account,
        inv.period,
        if inv.name.is_empty() {
            String::new()
        } else {
            format!("  ({})", inv.name)
        }
    );
    let _ = writeln!(
        out,
        "tariff   {}",
        if inv.tariff.is_empty() {
            "-"
        } else {
            &inv.tariff
        }
    );
    out.push('\n');
    let rows: Vec<Vec<String>> = inv
        .lines
        .iter()
        .map(|l| {
            vec![
                if l.user.is_empty() {
                    "(account)".into()
                } else {
                    l.user.clone()
                },
                l.kind.clone(),
                if l.detail.is_empty() {
                    "-".into()
                } else {
                    l.detail.clone()
                },
                if l.band.is_empty() {
                    "-".into()
                } else {
                    l.band.clone()
                },
                l.quantity.to_string(),
                l.unit.clone(),
                format!("{}/{}", l.price, l.per),
                money(l.amount),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("no charges\n");
    } else {
        out.push_str(&table(
            &[
                "USER",
                "KIND",
                "DETAIL",
                "BAND",
                "QUANTITY",
                "UNIT",
                "PRICE/PER",
                "AMOUNT",
            ],
            &rows,
        ));
    }
    out.push('\n');
    for (u, s) in inv.subtotals() {
        let who = if u.is_empty() {
            "(account)".to_string()
        } else {
            u
        };
        let _ = writeln!(out, "subtotal {who:<20} {:>14} {}", money(s), inv.currency);
    }
    let _ = writeln!(
        out,
        "TOTAL    {:<20} {:>14} {}",
        "",
        money(inv.total),
        inv.currency
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_read_as_utc() {
        assert_eq!(unix_ms_utc(1_700_000_000_123), "2023-11-14 22:13:20.123");
        assert_eq!(unix_ms_utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(unix_ms_utc(951_782_400_000), "2000-02-29 00:00:00.000");
    }

    #[test]
    fn aligns_numbers_right() {
        let t = table(
            &["NAME", "N"],
            &[
                vec!["a".into(), "5".into()],
                vec!["bbb".into(), "1234".into()],
            ],
        );
        assert_eq!(t, "NAME     N\na        5\nbbb   1234\n");
    }

    #[test]
    fn ports_say_why_frames_were_lost() {
        use tollgate_dataplane::PortStats;
        let stalled = PortStats {
            rx_dropped: 560,
            rx_max_wait_us: 212_400,
            ..PortStats::default()
        };
        let overloaded = PortStats {
            rx_late: 9000,
            ..PortStats::default()
        };
        let row = |side: &str, ps: &PortStats| proto::Port {
            side: side.into(),
            backend: "af_packet".into(),
            interface: None,
            mac: String::new(),
            address: String::new(),
            rx_packets: 0,
            rx_bytes: 0,
            tx_packets: 0,
            tx_bytes: 0,
            rx_dropped: ps.rx_dropped,
            rx_late: ps.rx_late,
            rx_too_big: 0,
            rx_no_buffer: 0,
            rx_to_kernel: 0,
            rx_max_wait_ms: ps.rx_max_wait_us as f64 / 1000.0,
            tx_errors: 0,
            rx_loss: crate::ctl::handlers::rx_loss("af_packet", ps),
        };
        let quiet = PortStats::default();
        let s = ports(&[row("access", &stalled), row("core", &quiet)]);
        assert!(
            s.contains("access: 560 dropped by the kernel, rx ring full; frames waited up to 212.4 ms for a worker: a worker did not run for longer than the ring holds"),
            "{s}"
        );
        assert!(!s.contains("core:"), "{s}");
        let s = ports(&[row("access", &quiet), row("core", &overloaded)]);
        assert!(
            s.contains("core: 9000 dropped at the head of the rx ring under sustained overload"),
            "{s}"
        );
        assert_eq!(crate::ctl::handlers::rx_loss("af_xdp", &quiet), None);
    }

    #[test]
    fn a_session_s_counters_are_split_by_family_when_it_has_ipv6() {
        let open = |v6: bool| {
            let mut j = serde_json::json!({"session": 1, "state": "open", "user": "sub1",
                "address": "10.10.0.11", "mac": null, "channel": 1, "worker": 0,
                "start": "2026-11-23T09:12:00.000Z", "age_s": 42, "bandwidth_up": 0,
                "bandwidth_down": 0, "services": [],
                "counters": {"tx_packets": 12, "tx_bytes": 1240, "rx_packets": 9, "rx_bytes": 7020}});
            if v6 {
                j["counters_ipv4"] = serde_json::json!({"tx_packets": 10, "tx_bytes": 840,
                    "rx_packets": 9, "rx_bytes": 7020});
                j["counters_ipv6"] = serde_json::json!({"tx_packets": 2, "tx_bytes": 400,
                    "rx_packets": 0, "rx_bytes": 0});
            }
            serde_json::from_value::<proto::SessionView>(j).unwrap()
        };
        let s = session(&open(true));
        let rows: Vec<Vec<&str>> = s.lines().map(|l| l.split_whitespace().collect()).collect();
        for want in [
            ["tx_bytes", "1240"],
            ["tx_bytes_ipv4", "840"],
            ["tx_bytes_ipv6", "400"],
            ["rx_packets_ipv6", "0"],
        ] {
            assert!(rows.contains(&want.to_vec()), "{want:?} in\n{s}");
        }
        assert!(!s.contains("counters"), "{s}");
        let s = session(&open(false));
        assert!(s.contains("tx_bytes") && !s.contains("_ipv"), "{s}");
    }

    #[test]
    fn counters_lists_only_nonzero_drops() {
        let d: proto::Counters = serde_json::from_value(serde_json::json!({
            "sides": {"access": {"rx_packets": 3, "rx_bytes": 180, "tx_packets": 1, "tx_bytes": 60},
                      "core": {"rx_packets": 0, "rx_bytes": 0, "tx_packets": 2, "tx_bytes": 120}},
            "drops": {"no_route": 1, "ttl_expired": 0},
            "drops_total": 1,
            "engine": {"forwarded": 2},
            "control": {"punts": 0, "punts_malformed": 0, "events": 0, "arp_requests": 0,
                        "neighbors_installed": 0, "flow_limits": 0, "nat_ports_exhausted": 0,
                        "command_retries": 0, "commands_dropped": 0, "injects_dropped": 0},
        }))
        .unwrap();
        let s = counters(&d);
        assert!(s.contains("no_route"), "{s}");
        assert!(!s.contains("ttl_expired"), "{s}");
        assert!(
            s.contains("access        3       180        1        60"),
            "{s}"
        );
        assert!(
            s.contains("forwarded") && s.contains("punts_malformed"),
            "{s}"
        );
    }
}
