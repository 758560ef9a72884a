//! The control thread's loop: one pass takes a ctl request, what the workers and the
//! AAA shell's sockets brought, routes everything the core produced once (the one
//! [`router::route`] of the pass), renders the metrics when due and answers the ctl
//! requests that are ready.

use std::sync::atomic::{AtomicBool, Ordering};

use tollgate_control_core::gateway::Core;
use tollgate_dataplane::time::Instant;

use super::exposition::Exposition;
use super::reports::Reports;
use super::requests::Requests;
use super::shutdown::{Goodbye, PppGoodbye};
use super::workers::Workers;
use crate::aaa::AaaShell;
use crate::config::Config;
use crate::ctl::handlers::EngineInfo;
use crate::dispatch::Dispatcher;
use crate::outlets::Outlets;
use crate::router;

/// Everything the control thread holds while the gateway runs.
pub(super) struct ControlLoop<'a> {
    pub(super) cfg: &'a Config,
    pub(super) info: EngineInfo,
    pub(super) core: Core,
    /// The control ends of the workers' rings.
    pub(super) workers: Dispatcher,
    pub(super) outlets: Outlets,
    pub(super) shell: AaaShell,
    pub(super) requests: Requests,
    pub(super) reports: Reports,
    pub(super) exposition: Option<Exposition>,
}

impl ControlLoop<'_> {
    /// Runs passes until `stop` is set (and the PPPoE subscribers and L2TP peers have
    /// been told) or a worker
    /// ends. Returns the worker that ended while the gateway was not stopping.
    pub(super) fn run(&mut self, stop: &AtomicBool, threads: &Workers) -> Option<usize> {
        let mut ppp = PppGoodbye::default();
        let mut goodbye = Goodbye::default();
        loop {
            if stop.load(Ordering::Relaxed)
                && !ppp.keep_running(self)
                && !goodbye.keep_running(&mut self.core)
            {
                return None;
            }
            self.pass();
            if let Some(i) = threads.ended() {
                // A worker only ends on its own when it panicked.
                return (!stop.load(Ordering::Relaxed)).then_some(i);
            }
        }
    }

    /// One pass: a ctl request, what the workers and the sockets brought, then one route
    /// of everything the core produced; then the metrics and the ctl answers.
    pub(super) fn pass(&mut self) {
        self.requests.start_next(
            self.cfg,
            &mut self.core,
            &mut self.shell,
            &mut self.reports,
            &mut self.workers,
        );
        let now = Instant::now();
        self.workers.drain(&mut self.core, now);
        self.shell.poll(&mut self.core, now);
        if let Some(s) = self.outlets.dhcpv6_relay() {
            s.poll(&mut self.core, now);
        }
        router::route(
            &mut self.core,
            now,
            &mut self.workers,
            &mut self.outlets,
            &mut self.shell,
        );
        if let Some(e) = &mut self.exposition {
            e.render_if_due(
                now,
                &mut self.reports,
                &mut self.workers,
                &self.core,
                &self.shell,
            );
        }
        self.requests
            .answer_ready(now, &self.info, &mut self.core, &self.workers, &self.shell);
    }
}
