//! The metrics exposition: the server on `aaa.metrics.listen`, and the snapshot it serves,
//! rendered again every `aaa.metrics.render_ms` from the latest worker reports, the core
//! and the AAA shell (a scrape never waits for the control thread).

use std::time::Duration;

use anyhow::Context as _;
use tollgate_control_core::gateway::Core;
use tollgate_dataplane::time::Instant;

use super::reports::Reports;
use crate::aaa::AaaShell;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::metrics::Snapshot;
use crate::metrics::server::MetricsServer;

/// The served metrics.
pub(super) struct Exposition {
    /// Serves `snapshot` until dropped.
    _server: MetricsServer,
    snapshot: Snapshot,
    every: Duration,
    next: Instant,
}

impl Exposition {
    /// Starts serving metrics when `aaa.metrics.listen` is set; the first rendering is
    /// due at `now`.
    pub(super) fn start(cfg: &Config, now: Instant) -> anyhow::Result<Option<Exposition>> {
        let Some(addr) = cfg.aaa.metrics.listen else {
            return Ok(None);
        };
        let snapshot = Snapshot::new();
        let server = MetricsServer::start(addr, snapshot.clone())
            .with_context(|| format!("serving metrics on {addr}"))?;
        tracing::info!(listen = %server.local_addr(), "metrics at /metrics");
        Ok(Some(Exposition {
            _server: server,
            snapshot,
            every: Duration::from_millis(cfg.aaa.metrics.render_ms),
            next: now,
        }))
    }

    /// Renders and publishes the metrics when a rendering is due.
    pub(super) fn render_if_due(
        &mut self,
        now: Instant,
        reports: &mut Reports,
        workers: &mut Dispatcher,
        core: &Core,
        shell: &AaaShell,
    ) {
        if now < self.next {
            return;
        }
        self.next = now + self.every;
        reports.refresh(workers);
        self.snapshot.publish(crate::metrics::gateway::render(
            workers.reports(),
            core,
            |r| shell.metrics(r),
        ));
    }
}
