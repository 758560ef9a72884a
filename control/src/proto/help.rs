//! The ctl commands, with one line each for `help`: the vocabulary of the protocol in
//! [`super`], listed by the part of the gateway that answers them.

/// The gateway's own commands.
pub const GATEWAY: &[(&str, &str)] = &[
    ("help", "list the commands"),
    ("show status", "version, uptime, config, totals"),
    (
        "show ports",
        "per port: backend, interface, MAC, address, packets, bytes, backend drops",
    ),
    (
        "show workers",
        "per worker: core, polls, busy share, packets, drops, held packets, sessions, flows",
    ),
    (
        "show counters",
        "packets and bytes per side, drops by reason, engine and control counters",
    ),
    (
        "show neighbors",
        "the neighbour table: address, side, MAC, state, age",
    ),
    ("show sessions", "open sessions with their counters"),
    (
        "show session",
        "one session (args: session = id or address), open or recently ended",
    ),
    (
        "show services",
        "services, their real servers, states and metrics",
    ),
    ("show lb", "load-balancing ranges, their targets and states"),
    (
        "session add",
        "open a session (args: user, address, and optional mac, services, bandwidth_up/down, limits)",
    ),
    (
        "session remove",
        "end a session (args: session = id or address, cause)",
    ),
    (
        "session update",
        "change a session live (args: session, bandwidth_up/down, services, limits)",
    ),
    (
        "server set",
        "change a real server (args: service, server = index or address[:port], state, response_us, cpu_load)",
    ),
    (
        "lb set",
        "mark a load-balancing target up or down (args: mac, state)",
    ),
    (
        "session login",
        "log a subscriber in like a NAS access request (args: user, password, address, mac, mobile_id, channel); answers when the session is installed",
    ),
    (
        "session logout",
        "end sessions (args: session = id or address, or user = name; cause)",
    ),
    (
        "subscriber add",
        "add a subscriber to the local store (args: an import record, replace)",
    ),
    ("subscriber remove", "remove a subscriber (args: user)"),
    (
        "subscriber show",
        "one subscriber of the store (args: user)",
    ),
    ("subscriber list", "every subscriber of the store"),
    (
        "subscriber import",
        "import subscribers (args: text, file, format = toml or csv, replace): all or none",
    ),
    (
        "show accounting",
        "authentication backend, accounting spool, RADIUS servers, CoA listener",
    ),
    (
        "show health",
        "health-checked servers and nodes: state, response time",
    ),
    (
        "show cluster",
        "cluster nodes (PostgreSQL): state, last heartbeat, sessions; pool ranges in use",
    ),
    (
        "show pools",
        "address pools: ranges, nodes, assigned addresses",
    ),
    ("show logins", "login and accounting counters"),
];

/// The L2TP commands.
pub const L2TP: &[(&str, &str)] = &[
    (
        "show tunnels",
        "L2TP: lines, customers (tunnels and lines in use), tunnels with their load",
    ),
    (
        "show tunnel",
        "one tunnel (args: tunnel = id): control connection, sessions, traffic",
    ),
    (
        "tunnel session remove",
        "end a switched PPP call (LAC: our L2TP session id, show session USER -> l2tp_session) or a session a LAC opened (LNS: session id or subscriber address) (args: session)",
    ),
    (
        "tunnel session level",
        "set a switched call's service level (LAC: its administration-table id, show tunnel ID -> CALL) (args: session, level)",
    ),
];

/// The billing (rating) commands.
pub const BILLING: &[(&str, &str)] = &[
    (
        "billing status",
        "rating database, stored records by kind, closed periods",
    ),
    (
        "billing close-period [PERIOD]",
        "rate a finished period (default: the last one) and store its invoices",
    ),
    (
        "billing invoice ACCOUNT [PERIOD]",
        "an account's invoice (default: this period, provisional)",
    ),
    (
        "billing invoices [PERIOD]",
        "every account's invoice of a period",
    ),
    (
        "billing rerate PERIOD",
        "rate a closed period again and compare with the stored invoices",
    ),
    (
        "billing import",
        "store usage records given in args.records, all or none (args.import, part, more: a file in parts)",
    ),
    ("show invoice ACCOUNT [PERIOD]", "same as billing invoice"),
];
