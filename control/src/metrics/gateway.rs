//! The gateway's own families: per worker and side packets and bytes, drops by reason,
//! sessions by SES-1 state, logins by outcome, accounting records, plus the AAA
//! libraries' families ([`super::aaa`]).

use tollgate_dataplane::counters::DropReason;
use tollgate_dataplane::{Side, WorkerReport};

use super::Registry;
use tollgate_control_core::gateway::Core;
use tollgate_control_core::gateway::aaa::SesState;

/// Renders every family from the latest worker reports and the core; `shell` adds the
/// AAA shell's (`AaaShell::metrics`).
pub fn render(
    reports: &[Option<WorkerReport>],
    core: &Core,
    shell: impl FnOnce(&mut Registry),
) -> String {
    let mut r = Registry::new();
    for rep in reports.iter().flatten() {
        let w = rep.worker.to_string();
        for s in Side::ALL {
            let c = &rep.counters.sides[s.idx()];
            let side = s.to_string();
            for (dir, p, b) in [
                ("rx", c.rx_packets, c.rx_bytes),
                ("tx", c.tx_packets, c.tx_bytes),
            ] {
                let l = [
                    ("worker", w.as_str()),
                    ("side", side.as_str()),
                    ("direction", dir),
                ];
                r.counter(
                    "tollgate_port_packets_total",
                    "Frames through a port, per worker.",
                )
                .value(&l, p);
                r.counter(
                    "tollgate_port_bytes_total",
                    "Bytes through a port (Ethernet frame, no FCS), per worker.",
                )
                .value(&l, b);
            }
            let ps = &rep.ports[s.idx()];
            let l = [("worker", w.as_str()), ("side", side.as_str())];
            r.counter(
                "tollgate_port_rx_dropped_total",
                "Frames the kernel or NIC dropped: rx ring full.",
            )
            .value(&l, ps.rx_dropped);
            r.counter(
                "tollgate_port_rx_late_total",
                "Frames dropped at the head of the rx ring under sustained overload (waited over af_packet.max_delay_ms).",
            )
            .value(&l, ps.rx_late);
            r.gauge(
                "tollgate_port_rx_max_wait_seconds",
                "The longest a frame waited in the rx ring for its worker (AF_PACKET).",
            )
            .sample(&l, ps.rx_max_wait_us as f64 / 1e6);
        }
        for d in DropReason::ALL {
            r.counter(
                "tollgate_drops_total",
                "Packets the fast path dropped, by reason.",
            )
            .value(
                &[("worker", w.as_str()), ("reason", d.name())],
                rep.counters.dropped(*d),
            );
        }
        r.gauge(
            "tollgate_worker_sessions",
            "Sessions installed on a worker.",
        )
        .value(&[("worker", w.as_str())], rep.sessions as u64);
        r.gauge("tollgate_worker_flows", "NAT flows open on a worker.")
            .value(&[("worker", w.as_str())], rep.flows as u64);
    }
    let (mut act, mut dormant) = (0u64, 0u64);
    for (id, _) in core.sessions().all() {
        match core.aaa_session(*id).map(|a| a.state) {
            Some(SesState::Dormant) => dormant += 1,
            _ => act += 1,
        }
    }
    r.gauge("tollgate_sessions", "Open sessions by SES-1 state.")
        .value(&[("state", "act")], act)
        .value(&[("state", "dormant")], dormant);
    let s = core.aaa_stats();
    let logins = r.counter("tollgate_logins_total", "Logins by outcome.");
    for (k, v) in [
        ("accepted", s.accepted),
        ("rejected", s.rejected),
        ("unavailable", s.unavailable),
        ("busy", s.busy),
        ("failed", s.failed),
    ] {
        logins.value(&[("result", k)], v);
    }
    r.gauge(
        "tollgate_logins_pending",
        "Logins waiting for authentication.",
    )
    .value(&[], core.logins_pending() as u64);
    r.counter(
        "tollgate_login_victims_total",
        "Sessions ended by a simultaneous-login limit.",
    )
    .value(&[], s.login_victims);
    let acct = r.counter(
        "tollgate_accounting_records_total",
        "Accounting records produced, by type.",
    );
    acct.value(&[("type", "start")], s.starts)
        .value(&[("type", "interim")], s.interims)
        .value(&[("type", "stop")], s.stops);
    // PPPoE discovery and PPP: frames, drops and refusals by name (issue 14).
    let pppoe = r.counter(
        "tollgate_pppoe_total",
        "PPPoE discovery and PPP counters by name (frames, drops, refusals, ends).",
    );
    let mut open = None;
    // The LNS's PPP over L2TP (`lns_*`, issue 15) in the same family.
    for (k, v) in core
        .pppoe_counters()
        .into_iter()
        .chain(core.lns_counters())
        .chain(core.lac_counters())
    {
        if k == "ppp_sessions_open" {
            open = Some(v);
        } else {
            pppoe.value(&[("counter", k.as_str())], v);
        }
    }
    if let Some(n) = open {
        r.gauge(
            "tollgate_ppp_sessions",
            "PPP sessions held (discovery done, installed or not yet).",
        )
        .value(&[], n);
    }
    // The DHCPv4 server: messages, drops, refusals, logins and ends by name (issue 16).
    let dhcp = r.counter(
        "tollgate_dhcp_total",
        "DHCPv4 server counters by name (messages, drops, refusals, logins, ends).",
    );
    let (mut leases, mut held) = (None, None);
    for (k, v) in core.dhcp_counters() {
        match k.as_str() {
            "dhcp_leases" => leases = Some(v),
            "dhcp_addresses_held" => held = Some(v),
            _ => {
                dhcp.value(&[("counter", k.as_str())], v);
            }
        }
    }
    if let Some(n) = leases {
        r.gauge("tollgate_dhcp_leases", "DHCP leases bound.")
            .value(&[], n);
    }
    if let Some(n) = held {
        r.gauge(
            "tollgate_dhcp_addresses_held",
            "DECLINEd pool addresses held back from their pools.",
        )
        .value(&[], n);
    }
    shell(&mut r);
    r.render()
}
