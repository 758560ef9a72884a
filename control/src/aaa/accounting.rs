//! Accounting: the records of a pass committed to the spool in one transaction (with the
//! sessions' last known counters), usage records handed to the rating database, spooled
//! records sent to the accounting servers and deleted once acknowledged. With the
//! cluster's PostgreSQL (`[database]`) a record goes there first, then to the accounting
//! servers: it leaves the spool once both have it.

use super::*;
use crate::spool::Due;

/// Usage records in one batch (one ledger transaction) at most.
const USAGE_BATCH: usize = 500;

impl AaaShell {
    /// At the end of a pass: the usage records into the rating database and the
    /// accounting records and last known counters into the spool, one transaction each;
    /// the ctl requests waiting for Stops just committed are answered.
    pub(super) fn commit(&mut self, now: Instant) {
        if self.unsaved.is_empty() && self.last_known.is_empty() && self.usage.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        match self
            .spool
            .commit_with_usage(now, &self.unsaved, &self.last_known, &self.usage)
        {
            Ok(_) => {
                self.usage.clear();
                let took = started.elapsed();
                if !self.last_known.is_empty() {
                    self.stats.last_known_commit_us = took.as_micros() as u64;
                }
                self.stats.acct_spooled += self.unsaved.len() as u64;
                let unsaved = std::mem::take(&mut self.unsaved);
                let stops: Vec<&str> = unsaved
                    .iter()
                    .filter(|r| {
                        r.status == tollgate_control_core::radius::dict::AcctStatusType::Stop
                    })
                    .map(|r| r.session_id.as_str())
                    .collect();
                self.stop_waiters.answer(
                    &stops,
                    now,
                    false,
                    Unsaved {
                        records: &self.unsaved,
                        spool_errors: self.stats.spool_errors,
                    },
                );
                self.last_known.clear();
            }
            Err(e) => {
                self.stats.spool_errors += 1;
                if self.stats.spool_errors == 1 || self.stats.spool_errors.is_multiple_of(1000) {
                    tracing::error!(error = %e, waiting = self.unsaved.len(), "cannot commit accounting records; keeping them in memory and retrying");
                }
            }
        }
    }

    /// The spooled usage records to the rating ledger, a batch at a time, oldest first
    /// (on the ledger's own thread); the ones it has leave the spool, a failed batch goes
    /// again after the spool's back-off.
    fn deliver_usage(&mut self, now: Instant) {
        let Some(l) = self.ledger.as_mut() else {
            return;
        };
        while let Some(o) = l.delivery.outcome() {
            l.in_flight.clear();
            if o.failed.is_empty() {
                l.attempts = 0;
            } else {
                l.attempts = l.attempts.saturating_add(1);
                let shift = l.attempts.saturating_sub(1).min(20);
                l.next = now + l.retry_min.saturating_mul(1 << shift).min(l.retry_max);
            }
            // Failing here, they stay in the spool and go again: stored once all the same.
            if let Err(e) = self.spool.usage_done(&o.done) {
                tracing::error!(error = %e, "deleting stored usage records from the spool");
            }
        }
        self.stats.rating_errors = l
            .delivery
            .stats()
            .refused
            .load(std::sync::atomic::Ordering::Relaxed);
        if !l.in_flight.is_empty() || now < l.next {
            return;
        }
        match self.spool.usage_due(USAGE_BATCH) {
            Ok(batch) if !batch.is_empty() => {
                l.in_flight = batch.iter().map(|(id, _)| *id).collect();
                l.delivery.send(batch);
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "reading usage records from the spool"),
        }
    }

    /// Sends spooled records to the accounting servers and deletes the acknowledged ones;
    /// without accounting servers a record is done once it is on disk (the spool still
    /// keeps the open sessions for a restart).
    pub(super) fn deliver(&mut self, core: &Core, now: Instant) {
        self.deliver_usage(now);
        self.send_due(core, now);
        self.take_database_outcomes(core, now);
        self.take_acct_replies(now);
        if !self.acks.is_empty() {
            match self.spool.ack_many(now, &self.acks) {
                Ok(()) => {
                    self.stats.acct_done += self.acks.len() as u64;
                    self.acks.clear();
                }
                Err(e) => tracing::error!(error = %e, "deleting acknowledged accounting records"),
            }
        }
    }

    /// Sends the spooled records that are due (without accounting servers: marks them
    /// done).
    fn send_due(&mut self, core: &Core, now: Instant) {
        let now_unix = unix_s(core, now);
        let mut batch = Vec::new();
        loop {
            let due = match self.spool.next_due(now) {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "reading the accounting spool");
                    break;
                }
            };
            if self.database.is_some() {
                batch.push((due.id, due.record.clone()));
                self.to_database.insert(due.id, due);
                continue;
            }
            self.send_to_radius(now, now_unix, due);
        }
        if let (Some(db), false) = (&self.database, batch.is_empty()) {
            db.send(batch);
        }
    }

    /// The database's answers: committed records go on to the accounting servers (or are
    /// done), the others are retried after the spool's back-off.
    fn take_database_outcomes(&mut self, core: &Core, now: Instant) {
        let now_unix = unix_s(core, now);
        while let Some(o) = self.database.as_ref().and_then(|d| d.outcome()) {
            self.stats.acct_db_committed += o.committed.len() as u64;
            self.stats.acct_db_retries += o.failed.len() as u64;
            for id in o.failed {
                self.to_database.remove(&id);
                self.spool.failed(now, id);
            }
            // A session a survivor took over: the record is done, and RADIUS got the
            // survivor's Stop.
            self.stats.acct_db_superseded += o.superseded.len() as u64;
            for id in o.superseded {
                self.to_database.remove(&id);
                self.acks.push(id);
            }
            for id in o.committed {
                if let Some(due) = self.to_database.remove(&id) {
                    self.send_to_radius(now, now_unix, due);
                }
            }
        }
    }

    /// One record to the accounting servers; without them it is done.
    fn send_to_radius(&mut self, now: Instant, now_unix: u64, due: Due) {
        match self.radius_acct.as_mut() {
            Some(c) => {
                let (request, left) = due.record.to_request_fitted(&self.nas, now_unix);
                if !left.is_empty() && due.attempts == 0 {
                    self.stats.acct_left_out += 1;
                    tracing::warn!(
                        record = due.id,
                        session = %due.record.session_id,
                        status = due.record.status.name(),
                        class_left_out = left.class,
                        class_octets_left_out = left.class_octets,
                        attributes_left_out = left.attributes,
                        values_cut = left.cut,
                        "accounting record too big for one RADIUS packet (4096 octets): sent without what did not fit"
                    );
                }
                let id = c.client.send(now, request);
                self.acct_ids.insert(id, (due.id, due.record.session_id));
                self.stats.acct_sent += 1;
            }
            None => self.acks.push(due.id),
        }
    }

    /// The accounting client's retransmissions, timeouts and replies: acknowledged records
    /// to delete, failed ones to retry later, ones that cannot be encoded set aside.
    fn take_acct_replies(&mut self, now: Instant) {
        let Some(c) = self.radius_acct.as_mut() else {
            return;
        };
        c.pump(now);
        while let Some(ev) = c.client.poll_event() {
            match ev {
                ClientEvent::Reply { id, .. } => {
                    if let Some((s, _)) = self.acct_ids.remove(&id) {
                        self.acks.push(s);
                    }
                }
                ClientEvent::Failed {
                    id,
                    reason: reason @ FailReason::Encode(_),
                } => {
                    // It would fail the same way every time: out of the queue, so the
                    // session's later records (its Stop) go out.
                    if let Some((s, session)) = self.acct_ids.remove(&id) {
                        self.stats.acct_set_aside += 1;
                        tracing::error!(record = s, %session, %reason, "accounting record cannot be sent: set aside in the spool");
                        if let Err(e) = self.spool.set_aside(now, s, &reason.to_string()) {
                            tracing::error!(record = s, error = %e, "setting an accounting record aside");
                            self.spool.failed(now, s);
                        }
                    }
                }
                ClientEvent::Failed { id, reason } => {
                    if let Some((s, _)) = self.acct_ids.remove(&id) {
                        if matches!(reason, FailReason::BadReplies { .. }) {
                            tracing::warn!(record = s, %reason, "accounting record not acknowledged; retrying later");
                        } else {
                            tracing::debug!(record = s, %reason, "accounting record not acknowledged; retrying later");
                        }
                        self.spool.failed(now, s);
                    }
                }
                ClientEvent::ServerDown(s) => {
                    tracing::warn!(server = %s, "RADIUS accounting server held down")
                }
                ClientEvent::ServerUp(s) => {
                    tracing::info!(server = %s, "RADIUS accounting server answers again")
                }
            }
        }
    }
}
