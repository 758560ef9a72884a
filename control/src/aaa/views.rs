//! What the AAA shell shows: `show accounting`, `show health` and its metrics families.

use super::*;

impl AaaShell {
    /// `show accounting`: the spool and the servers.
    pub fn accounting_json(&self, now: Instant) -> Value {
        let servers = |c: &Option<UdpClient>| -> Value {
            c.as_ref().map_or(json!([]), |c| {
                Value::Array(
                    c.client
                        .servers(now)
                        .into_iter()
                        .map(|(a, up)| json!({"server": a.to_string(), "state": if up { "up" } else { "held_down" }}))
                        .collect(),
                )
            })
        };
        let auth_stats = self.radius_auth.as_ref().map(|c| c.client.stats());
        let acct_stats = self.radius_acct.as_ref().map(|c| c.client.stats());
        let sp = self.spool.stats();
        json!({
            "auth": match self.backend { AuthBackend::Local => "local", AuthBackend::Radius => "radius" },
            "spool": {
                "pending": self.spool.pending().unwrap_or(0),
                "in_flight": self.spool.in_flight(),
                "enqueued": sp.enqueued,
                "acked": sp.acked,
                "failed_attempts": sp.failed_attempts,
                "recovered": sp.recovered,
                "unsaved": self.unsaved.len(),
                "set_aside": sp.set_aside,
                "left_out": self.stats.acct_left_out,
                "last_known": sp.last_known,
                "last_known_commits": sp.last_known_commits,
                "last_known_commit_us": self.stats.last_known_commit_us,
                "commit_errors": self.stats.spool_errors,
            },
            "radius_auth_servers": servers(&self.radius_auth),
            "radius_acct_servers": servers(&self.radius_acct),
            "radius_auth": auth_stats.map(|s| json!({"requests": s.requests, "replies": s.replies, "retransmits": s.retransmits, "failed": s.failed, "replies_dropped": replies_dropped(&s), "challenges": self.stats.auth_challenges})),
            "radius_acct": acct_stats.map(|s| json!({"requests": s.requests, "replies": s.replies, "retransmits": s.retransmits, "failed": s.failed, "replies_dropped": replies_dropped(&s)})),
            "coa": self.coa.as_ref().map(|c| {
                let s = c.listener.stats();
                json!({"listen": c.local_addr().ok().map(|a| a.to_string()), "requests": s.requests, "acks": s.acks, "naks": s.naks, "dropped": s.unknown_client + s.bad_authenticator + s.bad_message_authenticator + s.missing_message_authenticator + s.malformed + s.wrong_code + s.stale + s.missing_event_timestamp, "duplicates": s.duplicates, "cache_full": s.cache_full})
            }),
        })
    }

    /// `show health`: every checked target.
    pub fn health_json(&self) -> Value {
        let mut list: Vec<_> = self.health.scheduler.status();
        list.sort_by_key(|(id, _)| *id);
        Value::Array(
            list.into_iter()
                .map(|(_, t)| {
                    json!({
                        "target": t.target.name,
                        "address": t.target.addr.to_string(),
                        "check": match &t.target.kind {
                            CheckKind::Icmp => "icmp".to_string(),
                            CheckKind::Tcp { port } => format!("tcp:{port}"),
                            CheckKind::Http { port, path, .. } => format!("http:{port}{path}"),
                        },
                        "state": t.health.name(),
                        "rtt_us": t.rtt_ewma.map(|d| d.as_micros() as u64),
                        "passed": t.passed,
                        "failed": t.failed,
                        "last_error": t.last_error,
                    })
                })
                .collect(),
        )
    }

    /// Fills the AAA families of a metrics rendering.
    pub fn metrics(&self, r: &mut crate::metrics::Registry) {
        if let Some(c) = &self.radius_auth {
            crate::metrics::aaa::radius_client(r, "auth", &c.client.stats());
            r.counter(
                "tollgate_radius_access_challenges_total",
                "Access-Challenges received: logins refused, multi-round authentication is not supported.",
            )
            .value(&[], self.stats.auth_challenges);
        }
        if let Some(c) = &self.radius_acct {
            crate::metrics::aaa::radius_client(r, "acct", &c.client.stats());
        }
        if let Some(c) = &self.coa {
            crate::metrics::aaa::coa_listener(r, &c.listener.stats());
        }
        crate::metrics::aaa::spool(
            r,
            &self.spool.stats(),
            self.spool.pending().unwrap_or(0),
            self.spool.in_flight(),
        );
        r.counter(
            "tollgate_accounting_left_out_total",
            "Accounting records sent without attributes that did not fit in 4096 octets.",
        )
        .value(&[], self.stats.acct_left_out);
        let status: Vec<_> = self
            .health
            .scheduler
            .status()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        crate::metrics::aaa::health(r, &status);
    }
}

/// A RADIUS client's dropped replies by reason (`show accounting`).
fn replies_dropped(s: &tollgate_control_core::radius::client::ClientStats) -> Value {
    json!({
        "bad_authenticator": s.bad_authenticator,
        "bad_message_authenticator": s.bad_message_authenticator,
        "missing_message_authenticator": s.missing_message_authenticator,
        "malformed": s.malformed,
        "wrong_code": s.wrong_code,
        "unknown_source": s.unknown_source,
        "unmatched": s.unmatched,
    })
}
