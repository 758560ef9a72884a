//! Placement by source range (`[cluster] placement = "source-range"`, SPEC CLU-2 with
//! LB-1): where an upstream device steers subscribers' traffic by source range, a login
//! received by any node takes its address from the least-assigned range of any node that
//! is up, and the session is served by that range's node.
//!
//! What is in the database (the accounting schema's step 4): `cluster_placement`, one
//! row a placed login (one a mobile id: the row is also the mobile's memory of its
//! address): the node chosen, the address, the login's user and authorization, and its
//! state:
//! - `placed`: chosen by the receiving node, waiting for the chosen node; it holds the
//!   address until `reserved_until` (a lease): if the chosen node does not claim it by
//!   then (it died), the address goes back.
//! - `claimed`: the chosen node took it at its heartbeat (or is the receiving node) and
//!   is opening the session; holds the address until `reserved_until`.
//! - `opened`: the session is open on the chosen node (`session_id`, its
//!   Acct-Session-Id); holds the address until the session is closed in
//!   `cluster_session` (or its node is dead: a survivor closes its sessions).
//! - `failed`: the chosen node could not open it; holds nothing.
//!
//! One transaction a login, under one advisory lock (`pg_advisory_xact_lock`): two nodes
//! placing at once are serialised, so they never hand out the same address, and each
//! counts the other's placements. An address is in use when an open session in
//! `cluster_session` has it or a placement holds it; a range's load is its addresses in
//! use, and the range chosen is [`least_assigned`]'s over the ranges of the nodes that
//! are up (state `up`, lease running, heartbeat younger than three heartbeats).
//!
//! A returning mobile id keeps its address, and so its node: while its session is open
//! (or its placement pending), the same address and node, `resumed`; after it closed,
//! the same address again while it is free and its node up; else a new placement.

use std::net::Ipv4Addr;

use tollgate_control_core::gateway::pools::{RangeLoad, least_assigned};

/// The placement table (step 4 of [`super::accounting::MIGRATIONS`]).
pub const SCHEMA: &str = r#"
CREATE TABLE cluster_placement (
    id             BIGSERIAL PRIMARY KEY,
    mobile_id      TEXT UNIQUE,
    pool           TEXT NOT NULL,
    node           TEXT NOT NULL,
    address        INET NOT NULL,
    user_name      TEXT NOT NULL,
    authorization_json TEXT NOT NULL,
    placed_by      TEXT NOT NULL,
    placed_at      TIMESTAMPTZ NOT NULL,
    state          TEXT NOT NULL,
    reserved_until TIMESTAMPTZ NOT NULL,
    session_id     TEXT
);
CREATE INDEX cluster_placement_node ON cluster_placement (node) WHERE state = 'placed';
CREATE INDEX cluster_placement_address ON cluster_placement (address);
"#;

/// The advisory lock every placement takes (`pg_advisory_xact_lock`): "tollgate".
const LOCK: i64 = 0x746f_6c6c_6761_7465;

/// `[cluster] placement`: how a login of this node gets its address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// From this node's own least-assigned range (the node a subscriber reaches serves it).
    #[default]
    OwnRange,
    /// From the least-assigned range of any node that is up, whose node then serves the
    /// session (an upstream device steers by source range, LB-1).
    SourceRange,
}

/// A login to place: accepted, with no address of its own.
#[derive(Clone, Debug)]
pub struct PlaceRequest {
    /// The login (this node's).
    pub login: u64,
    /// The pool (Framed-Pool or the first `[[pool]]`).
    pub pool: String,
    /// Its mobile id, if any.
    pub mobile_id: Option<String>,
    /// The user.
    pub user: String,
    /// Its authorization, as JSON (the chosen node opens the session with it).
    pub authorization_json: String,
}

/// Where a login was placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// The placement's row.
    pub id: i64,
    /// The node that serves the session.
    pub node: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// A returning mobile id found its session (open, or its placement pending): nothing
    /// new to open.
    pub resumed: bool,
}

/// A placement for this node to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The placement's row.
    pub id: i64,
    /// The address.
    pub address: Ipv4Addr,
    /// The mobile id.
    pub mobile_id: Option<String>,
    /// The user.
    pub user: String,
    /// The authorization, as JSON.
    pub authorization_json: String,
}

/// What became of a claimed placement, for its row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The session is open: its Acct-Session-Id.
    Opened(i64, String),
    /// It could not be opened (the address in use here, a table full): the address goes
    /// back.
    Failed(i64),
}

/// The addresses in use (a CTE): open sessions' and those placements hold.
const HELD: &str = "held AS (
    SELECT address FROM cluster_session WHERE status <> 'closed' AND family(address) = 4
    UNION
    SELECT p.address FROM cluster_placement p
    WHERE (p.state IN ('placed', 'claimed') AND p.reserved_until > now())
       OR (p.state = 'opened'
           AND NOT EXISTS (SELECT 1 FROM cluster_session s
                           WHERE s.session_id = p.session_id AND s.status = 'closed')
           AND EXISTS (SELECT 1 FROM cluster_node n
                       WHERE n.node = p.node AND n.state <> 'dead')))";

/// Whether node `$N` is up: state `up`, lease running, heartbeat younger than `$S` ms.
fn node_up(node: &str, stale: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM cluster_node n WHERE n.node = {node} AND n.state = 'up'
             AND n.lease_until > now()
             AND n.heartbeat_at > now() - {stale}::float8 * interval '1 millisecond')"
    )
}

fn pg(context: &'static str) -> impl Fn(postgres::Error) -> String {
    move |e| format!("{context}: {}", super::error_chain(&e))
}

fn ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| format!("placement address {s:?} is not IPv4"))
}

/// Places login `req` received by node `me` (one transaction). `stale_ms`: a heartbeat
/// older than this is a node that is not up; `lease_ms`: how long a placement holds its
/// address for the chosen node to claim it.
pub fn place(
    client: &mut postgres::Client,
    me: &str,
    req: &PlaceRequest,
    stale_ms: f64,
    lease_ms: f64,
) -> Result<Placed, String> {
    let mut tx = client.transaction().map_err(pg("beginning"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .map_err(pg("taking the placement lock"))?;
    // Placements without a mobile id are kept only while they hold their address.
    tx.execute(
        "DELETE FROM cluster_placement p WHERE p.mobile_id IS NULL AND (p.state = 'failed'
             OR (p.state IN ('placed', 'claimed') AND p.reserved_until < now())
             OR (p.state = 'opened' AND EXISTS (SELECT 1 FROM cluster_session s
                 WHERE s.session_id = p.session_id AND s.status = 'closed')))",
        &[],
    )
    .map_err(pg("clearing old placements"))?;
    let state_for = |node: &str| if node == me { "claimed" } else { "placed" };
    let mut existing = None;
    if let Some(m) = &req.mobile_id {
        let q = format!(
            "WITH {HELD}
             SELECT p.id, p.node, host(p.address), p.state, p.reserved_until > now(),
                    NOT EXISTS (SELECT 1 FROM cluster_session s
                                WHERE s.session_id = p.session_id AND s.status = 'closed'),
                    {up},
                    EXISTS (SELECT 1 FROM held h WHERE h.address = p.address)
             FROM cluster_placement p WHERE p.mobile_id = $1",
            up = node_up("p.node", "$2")
        );
        if let Some(r) = tx
            .query_opt(&q, &[m, &stale_ms])
            .map_err(pg("reading the mobile id's placement"))?
        {
            let (id, node, address, state): (i64, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let (unexpired, live, up, held): (bool, bool, bool, bool) =
                (r.get(4), r.get(5), r.get(6), r.get(7));
            existing = Some(id);
            let pending = matches!(state.as_str(), "placed" | "claimed") && unexpired;
            if up && (pending || (state == "opened" && live)) {
                tx.commit().map_err(pg("committing"))?;
                return Ok(Placed {
                    id,
                    node,
                    address: ipv4(&address)?,
                    resumed: true,
                });
            }
            // Its session closed: the same address again while it is free.
            if up && !held {
                tx.execute(
                    "UPDATE cluster_placement SET state = $2, placed_by = $3, placed_at = now(),
                         reserved_until = now() + $4::float8 * interval '1 millisecond',
                         session_id = NULL, user_name = $5, authorization_json = $6
                     WHERE id = $1",
                    &[
                        &id,
                        &state_for(&node),
                        &me,
                        &lease_ms,
                        &req.user,
                        &req.authorization_json,
                    ],
                )
                .map_err(pg("placing the mobile id again"))?;
                tx.commit().map_err(pg("committing the placement"))?;
                return Ok(Placed {
                    id,
                    node,
                    address: ipv4(&address)?,
                    resumed: false,
                });
            }
        }
    }
    // The least-assigned range of a node that is up.
    let q = format!(
        "WITH {HELD}
         SELECT r.node, host(r.first_address), (r.last_address - r.first_address + 1)::bigint,
                (SELECT count(*) FROM held h
                 WHERE h.address BETWEEN r.first_address AND r.last_address),
                {up}
         FROM cluster_range r WHERE r.pool = $1 AND family(r.first_address) = 4
         ORDER BY r.first_address",
        up = node_up("r.node", "$2")
    );
    let ranges = tx
        .query(&q, &[&req.pool, &stale_ms])
        .map_err(pg("reading the pool's ranges"))?;
    let loads: Vec<RangeLoad> = ranges
        .iter()
        .map(|r| RangeLoad {
            up: r.get(4),
            assigned: r.get::<_, i64>(3).max(0) as u64,
            size: r.get::<_, i64>(2).max(0) as u64,
        })
        .collect();
    let Some(i) = least_assigned(&loads) else {
        return Err(if ranges.is_empty() {
            format!("pool {:?} has no range in the cluster", req.pool)
        } else {
            format!(
                "pool {:?} has no free address on a cluster node that is up",
                req.pool
            )
        });
    };
    let node: String = ranges[i].get(0);
    let first: String = ranges[i].get(1);
    let q = format!(
        "WITH {HELD}
         SELECT host(r.first_address + i) FROM cluster_range r,
                generate_series(0::bigint, r.last_address - r.first_address) i
         WHERE r.pool = $1 AND r.first_address = $2::text::inet
           AND NOT EXISTS (SELECT 1 FROM held h WHERE h.address = r.first_address + i)
         ORDER BY i LIMIT 1"
    );
    let address: String = tx
        .query_one(&q, &[&req.pool, &first])
        .map_err(pg("choosing the address"))?
        .get(0);
    let id: i64 = match existing {
        Some(id) => tx
            .execute(
                "UPDATE cluster_placement SET pool = $2, node = $3, address = $4::text::inet,
                     state = $5, placed_by = $6, placed_at = now(),
                     reserved_until = now() + $7::float8 * interval '1 millisecond',
                     session_id = NULL, user_name = $8, authorization_json = $9
                 WHERE id = $1",
                &[
                    &id,
                    &req.pool,
                    &node,
                    &address,
                    &state_for(&node),
                    &me,
                    &lease_ms,
                    &req.user,
                    &req.authorization_json,
                ],
            )
            .map(|_| id)
            .map_err(pg("placing the mobile id"))?,
        None => tx
            .query_one(
                "INSERT INTO cluster_placement (mobile_id, pool, node, address, user_name,
                     authorization_json, placed_by, placed_at, state, reserved_until)
                 VALUES ($1, $2, $3, $4::text::inet, $5, $6, $7, now(), $8,
                     now() + $9::float8 * interval '1 millisecond')
                 RETURNING id",
                &[
                    &req.mobile_id,
                    &req.pool,
                    &node,
                    &address,
                    &req.user,
                    &req.authorization_json,
                    &me,
                    &state_for(&node),
                    &lease_ms,
                ],
            )
            .map_err(pg("placing the login"))?
            .get(0),
    };
    tx.commit().map_err(pg("committing the placement"))?;
    Ok(Placed {
        id,
        node,
        address: ipv4(&address)?,
        resumed: false,
    })
}

/// The placements waiting for node `me`, claimed (they hold their address another
/// lease while the node opens their sessions).
pub fn claim(client: &mut postgres::Client, me: &str, lease_ms: f64) -> Result<Vec<Claim>, String> {
    let rows = client
        .query(
            "UPDATE cluster_placement SET state = 'claimed',
                 reserved_until = now() + $2::float8 * interval '1 millisecond'
             WHERE node = $1 AND state = 'placed' AND reserved_until > now()
             RETURNING id, host(address), mobile_id, user_name, authorization_json",
            &[&me, &lease_ms],
        )
        .map_err(pg("claiming the placements for this node"))?;
    rows.iter()
        .map(|r| {
            Ok(Claim {
                id: r.get(0),
                address: ipv4(r.get(1))?,
                mobile_id: r.get(2),
                user: r.get(3),
                authorization_json: r.get(4),
            })
        })
        .collect()
}

/// Records what became of claimed placements.
pub fn record(client: &mut postgres::Client, outcomes: &[Outcome]) -> Result<(), String> {
    for o in outcomes {
        match o {
            Outcome::Opened(id, session) => client.execute(
                "UPDATE cluster_placement SET state = 'opened', session_id = $2 WHERE id = $1",
                &[id, session],
            ),
            Outcome::Failed(id) => client.execute(
                "UPDATE cluster_placement SET state = 'failed' WHERE id = $1",
                &[id],
            ),
        }
        .map_err(pg("recording a placement's session"))?;
    }
    Ok(())
}
