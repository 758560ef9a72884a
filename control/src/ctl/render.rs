//! Human-readable tables for `tollgate ctl` answers. The client renders the same JSON a
//! script gets with `--json`, so the two never disagree.

use std::fmt::Write;

use serde_json::Value;
use tollgate_control_core::rating::Invoice;
use tollgate_control_core::rating::money::format_minor;

/// Renders the answer to `cmd` (its words) for a terminal.
pub fn render(words: &[&str], data: &Value) -> String {
    match words {
        ["help"] => help(data),
        ["show", "status"] => key_values(data),
        ["show", "ports"] => ports(data),
        ["show", "workers"] => workers(data),
        ["show", "counters"] => counters(data),
        ["show", "neighbors" | "neighbours"] => neighbors(data),
        ["show", "sessions"] => sessions(data),
        ["show", "session"] => session(data),
        ["show", "services"] => services(data),
        ["show", "lb"] => lb(data),
        ["show", "health"] => table(
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
            &rows_of(
                data,
                &[
                    "target",
                    "address",
                    "check",
                    "state",
                    "rtt_us",
                    "passed",
                    "failed",
                    "last_error",
                ],
            ),
        ),
        ["show", "pools"] => pools(data),
        ["subscriber", "list"] => subscribers(data),
        ["session", "login"] | ["show", "logins"] => key_values(data),
        ["show", "tunnels" | "tunnel"] => crate::ctl::l2tp::render(words, data).unwrap_or_default(),
        ["billing", ..] | ["show", "invoice", ..] => crate::ctl::billing::render(words, data),
        _ => serde_json::to_string_pretty(data).unwrap_or_default() + "\n",
    }
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

/// A JSON value as a table cell (`-` for null, strings unquoted).
pub(crate) fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn subscribers(data: &Value) -> String {
    let rows: Vec<Vec<String>> = data
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let ids: Vec<String> = s["identifiers"]
                        .as_array()
                        .map(|v| v.iter().map(cell).collect())
                        .unwrap_or_default();
                    vec![
                        cell(&s["user_id"]),
                        if s["has_password"] == true {
                            "set"
                        } else {
                            "-"
                        }
                        .into(),
                        ids.join(", "),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["USER", "PASSWORD", "IDENTIFIERS"], &rows)
}

fn pools(data: &Value) -> String {
    let mut rows = Vec::new();
    for p in data.as_array().into_iter().flatten() {
        for r in p["ranges"].as_array().into_iter().flatten() {
            rows.push(vec![
                cell(&p["pool"]),
                format!("{}-{}", cell(&r["first"]), cell(&r["last"])),
                cell(&r["size"]),
                cell(&r["assigned"]),
                cell(&r["node"]),
                cell(&r["node_state"]),
            ]);
        }
    }
    table(
        &["POOL", "RANGE", "SIZE", "ASSIGNED", "NODE", "NODE STATE"],
        &rows,
    )
}

fn help(data: &Value) -> String {
    let rows: Vec<Vec<String>> = data
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| vec![cell(&c["command"]), cell(&c["description"])])
                .collect()
        })
        .unwrap_or_default();
    table(&["COMMAND", "WHAT IT SHOWS"], &rows)
}

fn key_values(data: &Value) -> String {
    let Some(o) = data.as_object() else {
        return cell(data) + "\n";
    };
    let w = o.keys().map(|k| k.len()).max().unwrap_or(0);
    o.iter()
        .map(|(k, v)| format!("{k:<w$}  {}\n", cell(v)))
        .collect()
}

/// The cells of `keys` of each object in the array `data`.
pub(crate) fn rows_of(data: &Value, keys: &[&str]) -> Vec<Vec<String>> {
    data.as_array()
        .map(|a| {
            a.iter()
                .map(|r| keys.iter().map(|k| cell(&r[*k])).collect())
                .collect()
        })
        .unwrap_or_default()
}

fn ports(data: &Value) -> String {
    let keys = [
        "side",
        "backend",
        "interface",
        "mac",
        "address",
        "rx_packets",
        "rx_bytes",
        "tx_packets",
        "tx_bytes",
        "rx_dropped",
        "rx_late",
        "rx_max_wait_ms",
        "tx_errors",
    ];
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
    let mut out = table(&headers, &rows_of(data, &keys));
    // Why frames were lost, one line per side that lost any.
    for p in data.as_array().into_iter().flatten() {
        if let Some(why) = p["rx_loss"].as_str() {
            out.push_str(&format!("{}: {why}\n", cell(&p["side"])));
        }
    }
    out
}

fn workers(data: &Value) -> String {
    let keys = [
        "worker",
        "cpu",
        "polls",
        "busy_pct",
        "rx_packets",
        "tx_packets",
        "drops",
        "held",
        "neighbors",
        "sessions",
        "flows",
    ];
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
    table(&headers, &rows_of(data, &keys))
}

fn neighbors(data: &Value) -> String {
    let keys = ["address", "side", "mac", "state", "age_s"];
    let headers = ["ADDRESS", "SIDE", "MAC", "STATE", "AGE-S"];
    let rows = rows_of(data, &keys);
    if rows.is_empty() {
        return "no neighbours\n".into();
    }
    table(&headers, &rows)
}

fn sessions(data: &Value) -> String {
    let rows: Vec<Vec<String>> = data
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let c = &s["counters"];
                    vec![
                        cell(&s["session"]),
                        cell(&s["user"]),
                        cell(&s["address"]),
                        cell(&s["mac"]),
                        cell(&s["worker"]),
                        cell(&s["age_s"]),
                        cell(&c["tx_packets"]),
                        cell(&c["tx_bytes"]),
                        cell(&c["rx_packets"]),
                        cell(&c["rx_bytes"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        return "no sessions\n".into();
    }
    table(
        &[
            "SESSION", "USER", "ADDRESS", "MAC", "WORKER", "AGE-S", "TX-PKTS", "TX-BYTES",
            "RX-PKTS", "RX-BYTES",
        ],
        &rows,
    )
}

fn session(data: &Value) -> String {
    let mut out = String::new();
    if let Some(o) = data.as_object() {
        let w = o.keys().map(|k| k.len()).max().unwrap_or(0).max(10);
        for (k, v) in o {
            if k == "counters" {
                continue;
            }
            let shown = match v {
                Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
                other => cell(other),
            };
            let _ = writeln!(out, "{k:<w$}  {shown}");
        }
        if let Some(c) = o.get("counters").and_then(Value::as_object) {
            for (k, v) in c {
                let _ = writeln!(out, "{k:<w$}  {}", cell(v));
            }
        }
    }
    out
}

fn services(data: &Value) -> String {
    let mut rows = Vec::new();
    for s in data.as_array().into_iter().flatten() {
        for r in s["servers"].as_array().into_iter().flatten() {
            rows.push(vec![
                cell(&s["service"]),
                format!(
                    "{}:{}/{}",
                    cell(&s["vip"]),
                    cell(&s["port"]),
                    cell(&s["protocol"])
                ),
                cell(&s["policy"]),
                cell(&s["session_type"]),
                cell(&r["server"]),
                format!("{}:{}", cell(&r["address"]), cell(&r["port"])),
                cell(&r["state"]),
                cell(&r["weight"]),
                cell(&r["priority"]),
                cell(&r["response_us"]),
                cell(&r["cpu_load"]),
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

fn lb(data: &Value) -> String {
    let mut rows = Vec::new();
    for r in data.as_array().into_iter().flatten() {
        for (i, t) in r["targets"].as_array().into_iter().flatten().enumerate() {
            rows.push(vec![
                format!("{}-{}", cell(&r["first"]), cell(&r["last"])),
                if i == 0 {
                    "primary".into()
                } else {
                    format!("substitute {i}")
                },
                cell(&t["mac"]),
                cell(&t["state"]),
                if r["chosen"] == t["mac"] {
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
pub fn counters(data: &Value) -> String {
    let mut out = String::new();
    let side_rows: Vec<Vec<String>> = ["access", "core"]
        .iter()
        .map(|s| {
            let v = &data["sides"][*s];
            vec![
                s.to_string(),
                cell(&v["rx_packets"]),
                cell(&v["rx_bytes"]),
                cell(&v["tx_packets"]),
                cell(&v["tx_bytes"]),
            ]
        })
        .collect();
    out.push_str(&table(
        &["SIDE", "RX-PKTS", "RX-BYTES", "TX-PKTS", "TX-BYTES"],
        &side_rows,
    ));

    out.push('\n');
    let drops: Vec<Vec<String>> = data["drops"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                .map(|(k, v)| vec![k.clone(), cell(v)])
                .collect()
        })
        .unwrap_or_default();
    if drops.is_empty() {
        out.push_str("no drops\n");
    } else {
        out.push_str(&table(&["DROP REASON", "PACKETS"], &drops));
        out.push_str("(reasons not listed are 0; --json lists all)\n");
    }

    for (title, key) in [("ENGINE", "engine"), ("CONTROL", "control")] {
        out.push('\n');
        let rows: Vec<Vec<String>> = data[key]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect())
            .unwrap_or_default();
        out.push_str(&table(&[title, "COUNT"], &rows));
    }
    // PPPoE and PPP (issue 14): the non-zero ones, as for drops.
    let pppoe: Vec<Vec<String>> = data["pppoe"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                .map(|(k, v)| vec![k.clone(), cell(v)])
                .collect()
        })
        .unwrap_or_default();
    if !pppoe.is_empty() {
        out.push('\n');
        out.push_str(&table(&["PPPOE", "COUNT"], &pppoe));
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
    use serde_json::json;

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
        let row = |side: &str, ps: &PortStats| {
            json!({"side": side, "backend": "af_packet", "rx_dropped": ps.rx_dropped,
                   "rx_late": ps.rx_late, "rx_max_wait_ms": ps.rx_max_wait_us as f64 / 1000.0,
                   "rx_loss": crate::ctl::handlers::rx_loss("af_packet", ps)})
        };
        let quiet = PortStats::default();
        let s = ports(&json!([row("access", &stalled), row("core", &quiet)]));
        assert!(
            s.contains("access: 560 dropped by the kernel, rx ring full; frames waited up to 212.4 ms for a worker: a worker did not run for longer than the ring holds"),
            "{s}"
        );
        assert!(!s.contains("core:"), "{s}");
        let s = ports(&json!([row("access", &quiet), row("core", &overloaded)]));
        assert!(
            s.contains("core: 9000 dropped at the head of the rx ring under sustained overload"),
            "{s}"
        );
        assert_eq!(
            crate::ctl::handlers::rx_loss("af_xdp", &quiet),
            serde_json::Value::Null
        );
    }

    #[test]
    fn counters_lists_only_nonzero_drops() {
        let d = json!({
            "sides": {"access": {"rx_packets": 3, "rx_bytes": 180, "tx_packets": 1, "tx_bytes": 60},
                      "core": {"rx_packets": 0, "rx_bytes": 0, "tx_packets": 2, "tx_bytes": 120}},
            "drops": {"no_route": 1, "ttl_expired": 0},
            "engine": {"forwarded": 2},
            "control": {"punts": 0},
        });
        let s = counters(&d);
        assert!(s.contains("no_route"), "{s}");
        assert!(!s.contains("ttl_expired"), "{s}");
        assert!(
            s.contains("access        3       180        1        60"),
            "{s}"
        );
    }
}
