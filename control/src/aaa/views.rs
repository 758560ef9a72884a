//! What the AAA shell shows: `show accounting`, `show health` and its metrics families.

use super::*;
use crate::proto;
use tollgate_control_core::radius::client::ClientStats;

impl AaaShell {
    /// `show accounting`: the spool and the servers.
    pub fn accounting(&self, now: Instant) -> proto::Accounting {
        let servers = |c: &Option<UdpClient>| -> Vec<proto::RadiusServer> {
            c.as_ref().map_or(Vec::new(), |c| {
                c.client
                    .servers(now)
                    .into_iter()
                    .map(|(a, up)| proto::RadiusServer {
                        server: a.to_string(),
                        state: if up { "up" } else { "held_down" }.into(),
                    })
                    .collect()
            })
        };
        let client = |s: ClientStats, challenges: Option<u64>| proto::RadiusClient {
            requests: s.requests,
            replies: s.replies,
            retransmits: s.retransmits,
            failed: s.failed,
            replies_dropped: replies_dropped(&s),
            challenges,
        };
        let sp = self.spool.stats();
        proto::Accounting {
            auth: match self.backend {
                AuthBackend::Local => "local",
                AuthBackend::Radius => "radius",
            }
            .into(),
            spool: proto::SpoolView {
                pending: self.spool.pending().unwrap_or(0),
                in_flight: self.spool.in_flight() as u64,
                enqueued: sp.enqueued,
                acked: sp.acked,
                failed_attempts: sp.failed_attempts,
                recovered: sp.recovered,
                unsaved: self.unsaved.len() as u64,
                set_aside: sp.set_aside,
                left_out: self.stats.acct_left_out,
                last_known: sp.last_known,
                last_known_commits: sp.last_known_commits,
                last_known_commit_us: self.stats.last_known_commit_us,
                commit_errors: self.stats.spool_errors,
            },
            radius_auth_servers: servers(&self.radius_auth),
            radius_acct_servers: servers(&self.radius_acct),
            radius_auth: self
                .radius_auth
                .as_ref()
                .map(|c| client(c.client.stats(), Some(self.stats.auth_challenges))),
            radius_acct: self
                .radius_acct
                .as_ref()
                .map(|c| client(c.client.stats(), None)),
            coa: self.coa.as_ref().map(|c| {
                let s = c.listener.stats();
                proto::CoaView {
                    listen: c.local_addr().ok().map(|a| a.to_string()),
                    requests: s.requests,
                    acks: s.acks,
                    naks: s.naks,
                    dropped: s.unknown_client
                        + s.bad_authenticator
                        + s.bad_message_authenticator
                        + s.missing_message_authenticator
                        + s.malformed
                        + s.wrong_code
                        + s.stale
                        + s.missing_event_timestamp,
                    duplicates: s.duplicates,
                    cache_full: s.cache_full,
                }
            }),
            database: self.database.as_ref().map(|d| {
                let st = d.stats();
                let n =
                    |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
                proto::DatabaseView {
                    target: d.target().to_string(),
                    committed: self.stats.acct_db_committed,
                    duplicates: n(&st.duplicates),
                    retries: self.stats.acct_db_retries,
                    failed_batches: n(&st.failed_batches),
                    connects: n(&st.connects),
                    superseded: self.stats.acct_db_superseded,
                    takeover_stops: self.stats.acct_takeover_stops,
                }
            }),
            ledger: self.ledger.as_ref().map(|l| {
                let st = l.delivery.stats();
                let n =
                    |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
                proto::LedgerView {
                    target: l.delivery.target().to_string(),
                    pending: self.spool.usage_pending().unwrap_or(0),
                    stored: n(&st.stored),
                    duplicates: n(&st.duplicates),
                    refused: n(&st.refused),
                    superseded: n(&st.superseded),
                    failed_batches: n(&st.failed_batches),
                }
            }),
        }
    }

    /// `show health`: every checked target.
    pub fn health(&self) -> Vec<proto::HealthTarget> {
        let mut list: Vec<_> = self.health.scheduler.status();
        list.sort_by_key(|(id, _)| *id);
        list.into_iter()
            .map(|(_, t)| proto::HealthTarget {
                target: t.target.name.clone(),
                address: t.target.addr.to_string(),
                check: match &t.target.kind {
                    CheckKind::Icmp => "icmp".to_string(),
                    CheckKind::Tcp { port } => format!("tcp:{port}"),
                    CheckKind::Http { port, path, .. } => format!("http:{port}{path}"),
                },
                state: t.health.name().to_string(),
                rtt_us: t.rtt_ewma.map(|d| d.as_micros() as u64),
                passed: t.passed,
                failed: t.failed,
                last_error: t.last_error.clone(),
            })
            .collect()
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
fn replies_dropped(s: &ClientStats) -> proto::RepliesDropped {
    proto::RepliesDropped {
        bad_authenticator: s.bad_authenticator,
        bad_message_authenticator: s.bad_message_authenticator,
        missing_message_authenticator: s.missing_message_authenticator,
        malformed: s.malformed,
        wrong_code: s.wrong_code,
        unknown_source: s.unknown_source,
        unmatched: s.unmatched,
    }
}
