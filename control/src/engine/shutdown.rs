//! The stop sequence: the PPPoE subscribers ([`PppGoodbye`]) and the L2TP peers
//! ([`Goodbye`]) are told first while the workers still run, then the workers are halted and their last reports and events taken,
//! the tunnels' use recorded, the sessions' Stops committed by one last route and sent
//! while the accounting servers answer (2 s at most).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tollgate_control_core::gateway::Core;
use tollgate_dataplane::time::Instant;

use super::control_loop::ControlLoop;
use super::reports::Reports;
use super::workers::Workers;
use crate::ctl::handlers;
use crate::router;

/// How long the accounting records of the last route may take to be acknowledged.
const DELIVERY_WAIT: Duration = Duration::from_secs(2);

/// At a stop, first of all while the workers still run: every PPPoE subscriber gets LCP
/// Terminate-Request and PADT, and the loop keeps running until every frame is on a
/// worker's inject ring and two report rounds asked after that are answered (a worker
/// that answers the second has finished a poll that sent them), 1 s at most. The frames
/// (two per session) outnumber the inject ring's slots from 129 sessions on; the rest
/// wait in the dispatcher, and rounds asked while they wait would be answered before
/// they left: with 1000 BNG Blaster sessions, 494 got no PADT and stayed up.
#[derive(Debug, Default)]
pub(super) struct PppGoodbye {
    /// The report round awaited (none while frames wait for the inject ring), the
    /// deadline, and whether it is the second round.
    round: Option<(Option<u64>, Instant, bool)>,
}

impl PppGoodbye {
    /// The first call ends the PPP sessions; each call says whether to keep running for
    /// their frames to leave.
    pub(super) fn keep_running(&mut self, lp: &mut ControlLoop<'_>) -> bool {
        let now = Instant::now();
        match self.round {
            None => {
                let ended = lp.core.pppoe_shutdown(now);
                router::route(
                    &mut lp.core,
                    now,
                    &mut lp.workers,
                    &mut lp.outlets,
                    &mut lp.shell,
                );
                self.round = Some((None, now + Duration::from_secs(1), ended == 0));
                true
            }
            Some((_, deadline, _)) if now >= deadline => false,
            Some((None, deadline, second)) => {
                if !lp.workers.injects_waiting() {
                    let seq = lp.reports.ask(&mut lp.workers);
                    self.round = Some((Some(seq), deadline, second));
                }
                true
            }
            Some((Some(seq), _, _)) if !lp.workers.reported(seq) => true,
            Some((Some(_), deadline, false)) => {
                self.round = Some((None, deadline, true));
                true
            }
            Some((Some(_), _, true)) => false,
        }
    }
}

/// At a stop, while the workers still run: the StopCCNs to the L2TP peers and the wait
/// for their acknowledgements (at most `l2tp.shutdown_wait_ms`).
#[derive(Debug, Default)]
pub(super) struct Goodbye {
    /// When it began and its deadline.
    since: Option<(Instant, Instant)>,
}

impl Goodbye {
    /// The first call sends a StopCCN to every L2TP peer; each call says whether to keep
    /// running for their acknowledgements.
    pub(super) fn keep_running(&mut self, core: &mut Core) -> bool {
        let now = Instant::now();
        let done = |core: &Core| core.l2tp().is_none_or(|l| l.shutdown_done());
        match self.since {
            None => {
                let Some(wait) = core.l2tp().map(|l| l.settings().shutdown_wait) else {
                    return false;
                };
                core.with_l2tp(now, |l| l.map(|l| l.shutdown(now)));
                if done(core) || wait.is_zero() {
                    return false;
                }
                let tunnels = core.l2tp().map_or(0, |l| l.tunnels().len());
                tracing::info!(
                    tunnels,
                    wait_ms = wait.as_millis() as u64,
                    "stopping: StopCCN sent to the L2TP peers, waiting for their acknowledgements"
                );
                self.since = Some((now, now + wait));
                true
            }
            Some((since, deadline)) => {
                if done(core) {
                    tracing::info!(
                        ms = now.since(since).as_millis() as u64,
                        "the L2TP peers acknowledged the StopCCNs"
                    );
                    false
                } else if now >= deadline {
                    let unacked = core.l2tp().map_or(0, |l| {
                        l.tunnels()
                            .values()
                            .filter(|t| {
                                t.state == tollgate_control_core::l2tp::TunnelState::Stopping
                            })
                            .count()
                    });
                    tracing::warn!(
                        tunnels = unacked,
                        "L2TP peers did not acknowledge the StopCCN within l2tp.shutdown_wait_ms; stopping anyway"
                    );
                    false
                } else {
                    true
                }
            }
        }
    }
}

/// Stops the gateway after the control loop has ended: halts and joins the workers,
/// takes what they left, records the tunnels' use, commits and sends the last
/// accounting records, and logs the totals.
pub(super) fn stop(lp: &mut ControlLoop<'_>, threads: Workers, stop: &AtomicBool) {
    stop.store(true, Ordering::Relaxed);
    let now = Instant::now();
    // DHCP leases outlive the sessions the workers end now: they come back at the next
    // start from the lease file.
    lp.core.dhcp_stopping();
    threads.halt(|i, finished| match finished {
        Some(f) => Reports::collect_last(&mut lp.workers, &mut lp.core, now, i, f),
        None => tracing::error!("a worker thread panicked"),
    });
    // Tunnels end with the gateway: their use up to now is recorded. (Done already when
    // the loop ended on a signal; after a worker failure no StopCCN can go out now.)
    lp.core.with_l2tp(now, |l| l.map(|l| l.shutdown(now)));
    // The sessions' Stops: committed (by this route), and sent while the servers answer
    // (2 s at most).
    router::route(
        &mut lp.core,
        now,
        &mut lp.workers,
        &mut lp.outlets,
        &mut lp.shell,
    );
    lp.shell
        .finish(&mut lp.core, Instant::now() + DELIVERY_WAIT);
    let totals = handlers::counters(lp.workers.reports(), &lp.core, lp.workers.stats());
    tracing::info!(
        rx_access = totals.sides.access.rx_packets,
        rx_core = totals.sides.core.rx_packets,
        tx_access = totals.sides.access.tx_packets,
        tx_core = totals.sides.core.tx_packets,
        drops = totals.drops_total,
        sessions_ended = lp.core.sessions().stats().ended,
        "tollgate stopped"
    );
}
