//! Placement by source range in the shell (`[cluster] placement = "source-range"`,
//! CLU-2 with LB-1): an accepted login without an address goes to the cluster thread,
//! which places it in the database ([`crate::database::placement`]); placed on this
//! node, the core opens its session with the address; placed on another node, the login
//! is answered here with the address and that node's name, and that node opens the
//! session when it claims the placement at its next heartbeat.

use super::*;
use crate::database::placement::{Outcome, PlaceRequest, Placement};
use tollgate_control_core::authz::Authorization;

/// Logins being placed, and this node's placements whose session it is opening.
#[derive(Default)]
pub(super) struct Placing {
    /// Sent to the cluster thread: the user and authorization, for the answer.
    waiting: HashMap<LoginId, (String, Box<Authorization>)>,
    /// Placed on this node: the placement's row, for the login's outcome.
    here: HashMap<LoginId, i64>,
}

impl AaaShell {
    /// An authenticator's answer to login `login`: to the core, or first to the cluster
    /// to be placed (source-range, a login with no address of its own).
    pub(super) fn answer(&mut self, core: &mut Core, now: Instant, login: LoginId, a: AuthAnswer) {
        let Some(c) = self
            .cluster
            .as_ref()
            .filter(|c| c.placement() == Placement::SourceRange)
        else {
            return core.on_auth(now, login, a);
        };
        let (user, authorization) = match a {
            AuthAnswer::Accept {
                user,
                authorization,
            } if authorization.framed_ip.is_none() => (user, authorization),
            a => return core.on_auth(now, login, a),
        };
        let pool = authorization
            .pool
            .clone()
            .or_else(|| core.pools().pools.first().map(|p| p.name.clone()));
        let (Some(mobile_id), Some(pool)) = (core.placeable_login(login), pool) else {
            return core.on_auth(
                now,
                login,
                AuthAnswer::Accept {
                    user,
                    authorization,
                },
            );
        };
        let req = PlaceRequest {
            login,
            pool,
            mobile_id,
            user: user.clone(),
            authorization_json: serde_json::to_string(&*authorization).unwrap_or_default(),
        };
        if c.place(req) {
            self.placing.waiting.insert(login, (user, authorization));
        } else {
            core.on_auth(
                now,
                login,
                AuthAnswer::Unavailable("the cluster thread has stopped".into()),
            );
        }
    }

    /// Answers of the cluster thread: logins placed, and placements made on this node
    /// to open.
    pub(super) fn placements(&mut self, core: &mut Core, now: Instant) {
        let Some(c) = &self.cluster else {
            return;
        };
        for (login, r) in c.take_placed() {
            let Some((user, mut authorization)) = self.placing.waiting.remove(&login) else {
                continue;
            };
            match r {
                Err(e) => core.on_auth(
                    now,
                    login,
                    AuthAnswer::Unavailable(format!("the login could not be placed: {e}")),
                ),
                Ok(p) if p.node == c.node() => {
                    authorization.framed_ip = Some(p.address);
                    if !p.resumed {
                        self.placing.here.insert(login, p.id);
                    }
                    core.on_auth(
                        now,
                        login,
                        AuthAnswer::Accept {
                            user,
                            authorization,
                        },
                    );
                }
                Ok(p) => {
                    if !core.login_placed_elsewhere(login) {
                        continue;
                    }
                    tracing::info!(login, %user, address = %p.address, node = %p.node, resumed = p.resumed, "login placed on another node, which serves the session");
                    if let Some(reply) = self.ctl_logins.remove(&login) {
                        let _ = reply.try_send(Reply::with(&crate::proto::LoggedIn {
                            session: 0,
                            acct_session_id: None,
                            user,
                            address: p.address.to_string(),
                            resumed: p.resumed,
                            node: Some(p.node),
                        }));
                    }
                }
            }
        }
        for claim in c.take_claims() {
            let opened = serde_json::from_str::<Authorization>(&claim.authorization_json)
                .map_err(|e| format!("its authorization does not read: {e}"))
                .and_then(|a| {
                    core.open_placed(
                        now,
                        claim.user.clone(),
                        claim.mobile_id.clone(),
                        claim.address,
                        a,
                    )
                });
            let outcome = match opened {
                Ok(l) => {
                    tracing::info!(user = %l.user, address = %l.address, session = l.session, resumed = l.resumed, "opened a session another node placed here");
                    let acct = core
                        .aaa_session(l.session)
                        .map(|s| s.acct_id.clone())
                        .unwrap_or_default();
                    Outcome::Opened(claim.id, acct)
                }
                Err(e) => {
                    tracing::warn!(user = %claim.user, address = %claim.address, error = %e, "a session placed on this node could not be opened; its address goes back");
                    Outcome::Failed(claim.id)
                }
            };
            c.placement_done(outcome);
        }
    }

    /// A login placed on this node finished: its placement's row learns the session.
    pub(super) fn placed_login_done(
        &mut self,
        core: &Core,
        login: LoginId,
        result: &Result<Login, String>,
    ) {
        let (Some(id), Some(c)) = (self.placing.here.remove(&login), &self.cluster) else {
            return;
        };
        c.placement_done(match result {
            Ok(l) => Outcome::Opened(
                id,
                core.aaa_session(l.session)
                    .map(|s| s.acct_id.clone())
                    .unwrap_or_default(),
            ),
            Err(_) => Outcome::Failed(id),
        });
    }
}
