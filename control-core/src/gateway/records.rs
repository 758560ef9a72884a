//! Accounting records as JSON lines: the per-flow records (CNT-3) and the session log
//! (CNT-1), with wall-clock times. The engine's clock is monotonic; [`WallClock`] maps it
//! to Unix time (replay's clock already is Unix time, from the capture).

use serde_json::{Value, json};
use tollgate_dataplane::nat::FlowRecord;

use super::sessions::EndedSession;

pub use crate::time::{WallClock, rfc3339};

fn protocol_name(p: u8) -> &'static str {
    match p {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        _ => "other",
    }
}

/// A flow record as a JSON object.
pub fn flow(
    clock: &WallClock,
    r: &FlowRecord,
    user: &str,
    service: &str,
    host: Option<&str>,
) -> Value {
    let ep = |(a, p): (std::net::Ipv4Addr, u16)| format!("{a}:{p}");
    json!({
        "type": "flow",
        "session": r.session,
        "user": user,
        "service": service,
        "protocol": protocol_name(r.protocol),
        // A NAT64 subscriber: its IPv6 address and port (the pool's are in "nat").
        "subscriber": match r.subscriber6 {
            Some(a) => format!("[{a}]:{}", r.subscriber.1),
            None => ep(r.subscriber),
        },
        "vip": ep(r.vip),
        "server": ep(r.server),
        "nat": ep(r.nat),
        "start": clock.rfc3339(r.started),
        "end": clock.rfc3339(r.ended),
        "start_ns": clock.unix_ns(r.started) as i64,
        "end_ns": clock.unix_ns(r.ended) as i64,
        "up_packets": r.up.0,
        "up_bytes": r.up.1,
        "down_packets": r.down.0,
        "down_bytes": r.down.1,
        "close": r.close.name(),
        "host": host,
    })
}

/// An ended session as a JSON object (the session log).
pub fn session(clock: &WallClock, e: &EndedSession, acct_session_id: Option<&str>) -> Value {
    let r = &e.record;
    json!({
        "type": "session",
        "session": r.id,
        "acct_session_id": acct_session_id,
        "user": e.user,
        "channel": r.channel,
        "address": r.address.to_string(),
        "start": clock.rfc3339(r.started),
        "stop": clock.rfc3339(r.stopped),
        "start_ns": clock.unix_ns(r.started) as i64,
        "stop_ns": clock.unix_ns(r.stopped) as i64,
        "session_time_s": r.stopped.since(r.started).as_secs(),
        "cause": r.cause.name(),
        "acct_terminate_cause": r.cause.acct_terminate_cause(),
        "tx_packets": r.counters.tx_packets,
        "tx_bytes": r.counters.tx_bytes,
        "rx_packets": r.counters.rx_packets,
        "rx_bytes": r.counters.rx_bytes,
    })
}

/// The session-log line of a session a previous run left open, closed at restart from
/// its last accounting record (Stop, NAS-Reboot, last known counters).
pub fn recovered(stop: &crate::radius::attrs::AcctRecord) -> Value {
    let stop_s = stop.event_time as i128;
    let start_s = stop_s - stop.session_time_s as i128;
    let ns = |s: i128| s * 1_000_000_000;
    let c = &stop.counters;
    json!({
        "type": "session",
        "session": null,
        "acct_session_id": stop.session_id,
        "user": stop.user_name,
        "channel": null,
        "address": stop.framed_ip.map(|a| a.to_string()),
        "start": rfc3339(ns(start_s)),
        "stop": rfc3339(ns(stop_s)),
        "start_ns": ns(start_s) as i64,
        "stop_ns": ns(stop_s) as i64,
        "session_time_s": stop.session_time_s,
        "cause": "nas_reboot",
        "acct_terminate_cause": 11,
        "tx_packets": c.packets_up,
        "tx_bytes": c.octets_up,
        "rx_packets": c.packets_down,
        "rx_bytes": c.octets_down,
        "recovered": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1_000_000), "1969-12-31T23:59:59.999Z");
    }
}
