//! Accounting records as JSON lines: the per-flow records (CNT-3) and the session log
//! (CNT-1), with wall-clock times. The engine's clock is monotonic; [`WallClock`] maps it
//! to Unix time (replay's clock already is Unix time, from the capture).

use serde_json::{Value, json};
use tollgate_dataplane::nat::FlowRecord;
use tollgate_dataplane::time::Instant;

use super::sessions::EndedSession;

/// Maps engine instants to Unix nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    /// Unix nanoseconds minus engine nanoseconds.
    pub offset_ns: i128,
}

impl WallClock {
    /// For an engine clock that is Unix time (replay).
    pub const UNIX: WallClock = WallClock { offset_ns: 0 };

    /// The clock on which `now` (engine clock) reads `unix_ns` (Unix nanoseconds): the
    /// daemon passes the system's current time, read by the shell.
    pub fn at(now: Instant, unix_ns: i128) -> WallClock {
        WallClock {
            offset_ns: unix_ns - now.0 as i128,
        }
    }

    /// Unix nanoseconds of `t`.
    pub fn unix_ns(&self, t: Instant) -> i128 {
        t.0 as i128 + self.offset_ns
    }

    /// `t` as RFC 3339 UTC with milliseconds, e.g. `2026-11-23T08:02:00.123Z`.
    pub fn rfc3339(&self, t: Instant) -> String {
        rfc3339(self.unix_ns(t))
    }
}

/// Unix nanoseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339(unix_ns: i128) -> String {
    let ms = unix_ns.div_euclid(1_000_000);
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

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
        "subscriber": ep(r.subscriber),
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
