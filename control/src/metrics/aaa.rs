//! The AAA libraries' counters as Prometheus families, for the control thread's
//! rendering pass.

use super::Registry;
use crate::health::{Health, TargetStatus};
use crate::radius::client::ClientStats;
use crate::radius::coa::ListenerStats;
use crate::spool::SpoolStats;

/// A RADIUS client's counters; `role` is `auth` or `acct`.
pub fn radius_client(r: &mut Registry, role: &str, s: &ClientStats) {
    let l = [("role", role)];
    r.counter(
        "tollgate_radius_requests_total",
        "RADIUS requests submitted.",
    )
    .value(&l, s.requests);
    r.counter(
        "tollgate_radius_retransmits_total",
        "RADIUS retransmissions.",
    )
    .value(&l, s.retransmits);
    r.counter(
        "tollgate_radius_failovers_total",
        "RADIUS requests moved to another server.",
    )
    .value(&l, s.failovers);
    r.counter("tollgate_radius_replies_total", "Verified RADIUS replies.")
        .value(&l, s.replies);
    r.counter("tollgate_radius_failed_total", "RADIUS requests given up.")
        .value(&l, s.failed);
    let dropped = r.counter(
        "tollgate_radius_replies_dropped_total",
        "RADIUS replies dropped, by reason.",
    );
    for (reason, v) in [
        ("unknown_source", s.unknown_source),
        ("unmatched", s.unmatched),
        ("malformed", s.malformed),
        ("bad_authenticator", s.bad_authenticator),
        (
            "missing_message_authenticator",
            s.missing_message_authenticator,
        ),
        ("bad_message_authenticator", s.bad_message_authenticator),
        ("wrong_code", s.wrong_code),
    ] {
        dropped.value(&[("role", role), ("reason", reason)], v);
    }
}

/// The CoA/Disconnect listener's counters.
pub fn coa_listener(r: &mut Registry, s: &ListenerStats) {
    r.counter(
        "tollgate_coa_requests_total",
        "CoA/Disconnect requests answered.",
    )
    .value(&[], s.requests);
    r.counter(
        "tollgate_coa_answers_total",
        "CoA/Disconnect answers, by kind.",
    )
    .value(&[("answer", "ack")], s.acks)
    .value(&[("answer", "nak")], s.naks);
    let dropped = r.counter(
        "tollgate_coa_dropped_total",
        "CoA/Disconnect requests dropped, by reason.",
    );
    for (reason, v) in [
        ("unknown_client", s.unknown_client),
        ("bad_authenticator", s.bad_authenticator),
        ("bad_message_authenticator", s.bad_message_authenticator),
        (
            "missing_message_authenticator",
            s.missing_message_authenticator,
        ),
        ("malformed", s.malformed),
        ("wrong_code", s.wrong_code),
        ("stale", s.stale),
        ("missing_event_timestamp", s.missing_event_timestamp),
    ] {
        dropped.value(&[("reason", reason)], v);
    }
    r.counter(
        "tollgate_coa_duplicates_total",
        "CoA/Disconnect requests seen before (retransmitted or replayed), answered from the cache without acting.",
    )
    .value(&[], s.duplicates);
    r.counter(
        "tollgate_coa_cache_full_total",
        "CoA/Disconnect requests refused (NAK 506) because the duplicate cache was full.",
    )
    .value(&[], s.cache_full);
}

/// The accounting spool's counters and backlog.
pub fn spool(r: &mut Registry, s: &SpoolStats, pending: u64, in_flight: usize) {
    r.counter(
        "tollgate_accounting_enqueued_total",
        "Accounting records committed to the spool.",
    )
    .value(&[], s.enqueued);
    r.counter(
        "tollgate_accounting_acked_total",
        "Accounting records acknowledged by the server.",
    )
    .value(&[], s.acked);
    r.counter(
        "tollgate_accounting_failed_attempts_total",
        "Accounting attempts that got no answer.",
    )
    .value(&[], s.failed_attempts);
    r.counter(
        "tollgate_accounting_recovered_total",
        "Stops written at restart for sessions left open.",
    )
    .value(&[], s.recovered);
    r.counter(
        "tollgate_accounting_set_aside_total",
        "Accounting records that can never be sent, moved to the spool's set_aside table.",
    )
    .value(&[], s.set_aside);
    r.counter(
        "tollgate_accounting_last_known_total",
        "Sessions' last known counters written to the spool between records.",
    )
    .value(&[], s.last_known);
    r.gauge(
        "tollgate_accounting_pending",
        "Accounting records waiting for acknowledgement.",
    )
    .value(&[], pending);
    r.gauge(
        "tollgate_accounting_in_flight",
        "Accounting records sent, not yet answered.",
    )
    .value(&[], in_flight as u64);
}

/// Health-check targets: up (1) or not (0), and response-time EWMA.
pub fn health(r: &mut Registry, targets: &[TargetStatus]) {
    for t in targets {
        let addr = t.target.addr.to_string();
        let l = [
            ("target", t.target.name.as_str()),
            ("address", addr.as_str()),
        ];
        r.gauge(
            "tollgate_health_up",
            "1 if the target passes its health check.",
        )
        .value(&l, (t.health == Health::Up) as u64);
        if let Some(rtt) = t.rtt_ewma {
            r.gauge(
                "tollgate_health_rtt_seconds",
                "Health-check response time, EWMA.",
            )
            .sample(&l, rtt.as_secs_f64());
        }
        r.counter("tollgate_health_checks_total", "Health checks, by result.")
            .value(&[l[0], l[1], ("result", "passed")], t.passed)
            .value(&[l[0], l[1], ("result", "failed")], t.failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render() {
        let mut r = Registry::new();
        radius_client(
            &mut r,
            "auth",
            &ClientStats {
                requests: 3,
                ..ClientStats::default()
            },
        );
        radius_client(&mut r, "acct", &ClientStats::default());
        coa_listener(&mut r, &ListenerStats::default());
        spool(&mut r, &SpoolStats::default(), 5, 1);
        let t = r.render();
        assert!(
            t.contains("tollgate_radius_requests_total{role=\"auth\"} 3\n"),
            "{t}"
        );
        assert!(t.contains("tollgate_accounting_pending 5\n"), "{t}");
        assert_eq!(
            t.matches("# TYPE tollgate_radius_replies_dropped_total counter")
                .count(),
            1
        );
    }
}
