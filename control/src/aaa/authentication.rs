//! Logins: authentication requests to the local store's thread or to RADIUS, their
//! answers back to the core, and the answer to a `ctl session login` when its login
//! finishes.

use super::*;

impl AaaShell {
    /// Answers `reply` when login `login` finishes (`ctl session login`).
    pub fn reply_on_login(&mut self, login: LoginId, reply: Sender<Reply>) {
        self.ctl_logins.insert(login, reply);
    }

    /// Sends an authentication request to the store thread or to RADIUS; the answer
    /// reaches the core in a later [`Self::poll`] (at once when no server can answer).
    pub(super) fn authenticate(&mut self, core: &mut Core, now: Instant, req: AuthRequest) {
        match (&self.backend, self.radius_auth.as_mut()) {
            (AuthBackend::Radius, Some(c)) => {
                let (user, password) = match (&req.user, &req.password) {
                    (Some(u), p) => (u.clone(), p.clone().unwrap_or_default()),
                    // First-packet and identifier logins: User-Name is the MAC (or the
                    // address), as RADIUS MAC authentication does.
                    (None, _) => {
                        let name = req
                            .identifiers
                            .first()
                            .map(|i| i.value())
                            .unwrap_or_default();
                        let pw = self.mac_password.clone().unwrap_or_else(|| name.clone());
                        (name, pw)
                    }
                };
                let mut p = match &req.chap {
                    // PPP CHAP: CHAP-Password and CHAP-Challenge (RFC 2865 5.3).
                    Some(ch) => attrs::chap_access_request(
                        &self.nas,
                        &user,
                        (ch.id, &ch.challenge, &ch.response),
                        req.calling_station.as_deref(),
                    ),
                    None => attrs::access_request(
                        &self.nas,
                        &user,
                        password.as_bytes(),
                        req.calling_station.as_deref(),
                    ),
                };
                // A PPPoE subscriber: Framed-Protocol, NAS-Port-Type, NAS-Port-Id, TR-101.
                if let Some(line) = &req.line {
                    line.push(&mut p);
                }
                if let Some(ip) = req.address {
                    p.push(Attribute::ipv4(sa::FRAMED_IP_ADDRESS, ip));
                }
                let id = c.client.send(now, p);
                self.stats.radius_auth += 1;
                self.auth_ids.insert(id, (req.login, user));
            }
            (AuthBackend::Radius, None) => core.on_auth(
                now,
                req.login,
                AuthAnswer::Unavailable("no RADIUS authentication server".into()),
            ),
            (AuthBackend::Local, _) => {
                let login = req.login;
                if self
                    .store
                    .jobs
                    .send(StoreJob::Auth(req, std::time::Instant::now()))
                    .is_err()
                {
                    core.on_auth(
                        now,
                        login,
                        AuthAnswer::Unavailable("the store thread has stopped".into()),
                    );
                }
            }
        }
    }

    /// Hands the answers that are in to the core: the store thread's, and the RADIUS
    /// authentication client's (after its retransmissions and timeouts).
    pub(super) fn answer_logins(&mut self, core: &mut Core, now: Instant) {
        while let Ok((login, answer)) = self.store.answers.try_recv() {
            self.answer(core, now, login, answer);
        }
        let Some(c) = self.radius_auth.as_mut() else {
            return;
        };
        c.pump(now);
        let mut accepted = Vec::new();
        while let Some(ev) = c.client.poll_event() {
            match ev {
                ClientEvent::Reply { id, packet, .. } => {
                    let Some((login, user)) = self.auth_ids.remove(&id) else {
                        continue;
                    };
                    accepted.push((login, radius_answer(&packet, user, &mut self.stats)));
                }
                ClientEvent::Failed { id, reason } => {
                    if let Some((login, user)) = self.auth_ids.remove(&id) {
                        tracing::warn!(%user, %reason, "RADIUS authentication failed");
                        core.on_auth(now, login, AuthAnswer::Unavailable(reason.to_string()));
                    }
                }
                ClientEvent::ServerDown(s) => {
                    tracing::warn!(server = %s, "RADIUS authentication server held down")
                }
                ClientEvent::ServerUp(s) => {
                    tracing::info!(server = %s, "RADIUS authentication server answers again")
                }
            }
        }
        for (login, answer) in accepted {
            self.answer(core, now, login, answer);
        }
    }

    /// A finished login: answers the `ctl session login` that started it, if one did.
    pub(super) fn login_done(
        &mut self,
        core: &Core,
        login: LoginId,
        result: Result<Login, String>,
    ) {
        self.placed_login_done(core, login, &result);
        if let Some(reply) = self.ctl_logins.remove(&login) {
            let _ = reply.try_send(match result {
                Ok(l) => Reply::with(&crate::proto::LoggedIn {
                    session: l.session,
                    acct_session_id: core.aaa_session(l.session).map(|s| s.acct_id.clone()),
                    user: l.user,
                    address: l.address.to_string(),
                    resumed: l.resumed,
                    node: None,
                }),
                Err(e) => Reply::error(e),
            });
        }
    }
}

/// The core's answer to a RADIUS reply to the Access-Request for `user`.
fn radius_answer(packet: &Packet, user: String, stats: &mut ShellStats) -> AuthAnswer {
    match packet.code {
        Code::AccessAccept => match attrs::authorization(packet) {
            // The server may rename the user (User-Name in the Accept).
            Ok(a) => AuthAnswer::Accept {
                user: packet
                    .get(sa::USER_NAME)
                    .and_then(|u| u.as_text().ok())
                    .map_or(user, str::to_string),
                authorization: Box::new(a),
            },
            Err(e) => AuthAnswer::Reject(format!("Access-Accept with a bad attribute: {e}")),
        },
        Code::AccessChallenge => {
            // Not a refusal: the server wants another round, which no login path here
            // can carry.
            stats.auth_challenges += 1;
            tracing::warn!(%user, "RADIUS Access-Challenge: multi-round authentication is not supported; login refused");
            AuthAnswer::Unavailable(
                "the RADIUS server sent an Access-Challenge (multi-round authentication is not supported)".into(),
            )
        }
        _ => AuthAnswer::Reject(
            packet
                .get(sa::REPLY_MESSAGE)
                .and_then(|m| m.as_text().ok())
                .map_or_else(|| "Access-Reject".into(), |m| format!("Access-Reject: {m}")),
        ),
    }
}
