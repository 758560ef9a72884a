//! The RFC 5176 listener, sans-I/O: Disconnect-Request and CoA-Request from configured
//! clients (source address and shared secret), answered with ACK or NAK and an
//! Error-Cause. What happens to the session is the [`SessionDirectory`]'s business.
//!
//! A request is dropped silently (and counted) when it comes from an address that is not
//! a configured client, when its Request Authenticator or Message-Authenticator does not
//! verify (wrong secret), when it is malformed, or when its Event-Timestamp is more than
//! [`EVENT_WINDOW_S`] from our clock (RFC 5176 §3.5 replay protection). A retransmission
//! (same source, identifier and authenticator) within [`DUPLICATE_WINDOW`] gets the
//! cached answer again, so a retried Disconnect-Request is not NAKed for a session it
//! already ended.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hashbrown::HashMap;
use tollgate_dataplane::time::Instant;

use super::attrs::{self, NasIdentity};
use super::crypto::{self, VerifyError};
use super::dict::{ErrorCause, std_attr as sa};
use super::packet::{AttrKey, Attribute, Code, Packet, ValueError};
use crate::authz::Authorization;

/// Seconds an Event-Timestamp may differ from our clock.
pub const EVENT_WINDOW_S: u64 = 300;
/// How long answers are kept for retransmitted requests.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(30);

/// A client allowed to send CoA and Disconnect requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoaClient {
    /// Its source address (any port).
    pub addr: IpAddr,
    /// The shared secret.
    pub secret: Vec<u8>,
    /// Drop its requests that lack a Message-Authenticator.
    pub require_message_authenticator: bool,
}

/// How a request names the session (RFC 5176 §3: session identification attributes).
/// Every attribute present must match the session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionRef {
    /// Acct-Session-Id.
    pub session_id: Option<String>,
    /// User-Name.
    pub user_name: Option<String>,
    /// Framed-IP-Address.
    pub framed_ip: Option<Ipv4Addr>,
    /// Calling-Station-Id.
    pub calling_station_id: Option<String>,
}

/// What a CoA-Request changes: the authorization attributes it carries, to be applied
/// over the session's current [`Authorization`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The attributes, in request order.
    pub attributes: Vec<Attribute>,
}

impl Change {
    /// Applies the change over `a` (limits replaced, lists replaced when present).
    pub fn apply(&self, a: &mut Authorization) -> Result<(), ValueError> {
        let mut p = Packet::new(Code::CoaRequest, 0);
        p.attributes = self.attributes.clone();
        attrs::apply(a, &p)
    }
}

/// The sessions a listener acts on; the session registry implements it.
pub trait SessionDirectory {
    /// End the session (Acct-Terminate-Cause Admin-Reset). `Err` is sent as the NAK's
    /// Error-Cause, typically [`ErrorCause::SessionContextNotFound`].
    fn disconnect(&mut self, who: &SessionRef) -> Result<(), ErrorCause>;
    /// Change the session's authorization live.
    fn change(&mut self, who: &SessionRef, change: &Change) -> Result<(), ErrorCause>;
}

/// What the listener counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// Requests verified and answered (ACK or NAK).
    pub requests: u64,
    /// ACKs sent.
    pub acks: u64,
    /// NAKs sent.
    pub naks: u64,
    /// Dropped: source is not a configured client.
    pub unknown_client: u64,
    /// Dropped: Request Authenticator wrong (wrong secret).
    pub bad_authenticator: u64,
    /// Dropped: Message-Authenticator wrong.
    pub bad_message_authenticator: u64,
    /// Dropped: Message-Authenticator required and missing.
    pub missing_message_authenticator: u64,
    /// Dropped: not a RADIUS packet.
    pub malformed: u64,
    /// Dropped: a code other than Disconnect-Request or CoA-Request.
    pub wrong_code: u64,
    /// Dropped: Event-Timestamp outside the window.
    pub stale: u64,
    /// Retransmissions answered from the cache.
    pub duplicates: u64,
}

/// An answer kept for retransmissions: the request's authenticator, the answer, when.
type Answered = ([u8; 16], Vec<u8>, Instant);

/// The CoA / Disconnect listener.
#[derive(Debug)]
pub struct Listener {
    clients: Vec<CoaClient>,
    nas: NasIdentity,
    answered: HashMap<(SocketAddr, u8), Answered>,
    order: VecDeque<(Instant, SocketAddr, u8)>,
    stats: ListenerStats,
}

const IDENTIFICATION: [AttrKey; 4] = [
    sa::ACCT_SESSION_ID,
    sa::USER_NAME,
    sa::FRAMED_IP_ADDRESS,
    sa::CALLING_STATION_ID,
];

impl Listener {
    /// A listener for these clients; `nas` is checked against NAS-Identifier and
    /// NAS-IP-Address when a request carries them.
    pub fn new(clients: Vec<CoaClient>, nas: NasIdentity) -> Listener {
        Listener {
            clients,
            nas,
            answered: HashMap::new(),
            order: VecDeque::new(),
            stats: ListenerStats::default(),
        }
    }

    /// What the listener counted.
    pub fn stats(&self) -> ListenerStats {
        self.stats
    }

    /// Handles one datagram from `from` received at `now` (`now_unix`: seconds since
    /// 1970, for Event-Timestamp). Returns the answer to send back to `from`, or `None`
    /// when the request is dropped.
    pub fn handle(
        &mut self,
        now: Instant,
        now_unix: u64,
        from: SocketAddr,
        bytes: &[u8],
        sessions: &mut dyn SessionDirectory,
    ) -> Option<Vec<u8>> {
        self.expire(now);
        let Some(client) = self.clients.iter().find(|c| c.addr == from.ip()) else {
            self.stats.unknown_client += 1;
            return None;
        };
        let req = match crypto::verify_request(
            bytes,
            &client.secret,
            client.require_message_authenticator,
        ) {
            Ok(r) => r,
            Err(e) => {
                match e {
                    VerifyError::Malformed(_) => self.stats.malformed += 1,
                    VerifyError::BadAuthenticator => self.stats.bad_authenticator += 1,
                    VerifyError::BadMessageAuthenticator => {
                        self.stats.bad_message_authenticator += 1
                    }
                    VerifyError::MissingMessageAuthenticator => {
                        self.stats.missing_message_authenticator += 1
                    }
                }
                tracing::warn!(client = %from, error = %e, "CoA/Disconnect request dropped");
                return None;
            }
        };
        let (ack, nak) = match req.code {
            Code::DisconnectRequest => (Code::DisconnectAck, Code::DisconnectNak),
            Code::CoaRequest => (Code::CoaAck, Code::CoaNak),
            _ => {
                self.stats.wrong_code += 1;
                return None;
            }
        };
        if let Some((auth, answer, _)) = self.answered.get(&(from, req.identifier)) {
            if *auth == req.authenticator {
                self.stats.duplicates += 1;
                return Some(answer.clone());
            }
        }
        if let Some(ts) = req.get(sa::EVENT_TIMESTAMP) {
            let fresh = ts
                .as_u32()
                .is_ok_and(|ts| (ts as u64).abs_diff(now_unix) <= EVENT_WINDOW_S);
            if !fresh {
                self.stats.stale += 1;
                tracing::warn!(client = %from, "CoA/Disconnect request with a stale Event-Timestamp dropped");
                return None;
            }
        }
        let secret = client.secret.clone();
        let outcome = self.decide(&req, sessions);
        let mut reply = Packet::new(if outcome.is_ok() { ack } else { nak }, req.identifier);
        match outcome {
            Ok(()) => self.stats.acks += 1,
            Err(cause) => {
                self.stats.naks += 1;
                reply.push(Attribute::u32(sa::ERROR_CAUSE, cause.value()));
            }
        }
        self.stats.requests += 1;
        tracing::info!(client = %from, request = req.code.name(), answer = reply.code.name(), "CoA/Disconnect request answered");
        let bytes = crypto::sign_reply(&reply, &req.authenticator, &secret).ok()?;
        self.answered.insert(
            (from, req.identifier),
            (req.authenticator, bytes.clone(), now),
        );
        self.order.push_back((now, from, req.identifier));
        Some(bytes)
    }

    fn decide(&self, req: &Packet, sessions: &mut dyn SessionDirectory) -> Result<(), ErrorCause> {
        let mut who = SessionRef::default();
        let mut changes = Vec::new();
        for a in &req.attributes {
            let bad_value = |_| ErrorCause::InvalidAttributeValue;
            match a.key {
                k if k == sa::ACCT_SESSION_ID => {
                    who.session_id = Some(a.as_text().map_err(bad_value)?.to_string())
                }
                k if k == sa::USER_NAME => {
                    who.user_name = Some(a.as_text().map_err(bad_value)?.to_string())
                }
                k if k == sa::FRAMED_IP_ADDRESS => {
                    who.framed_ip = Some(a.as_ipv4().map_err(bad_value)?)
                }
                k if k == sa::CALLING_STATION_ID => {
                    who.calling_station_id = Some(a.as_text().map_err(bad_value)?.to_string())
                }
                k if k == sa::NAS_IDENTIFIER => {
                    if a.as_text().map_err(bad_value)? != self.nas.identifier {
                        return Err(ErrorCause::NasIdentificationMismatch);
                    }
                }
                k if k == sa::NAS_IP_ADDRESS => {
                    if Some(a.as_ipv4().map_err(bad_value)?) != self.nas.ip {
                        return Err(ErrorCause::NasIdentificationMismatch);
                    }
                }
                k if k == sa::SERVICE_TYPE => return Err(ErrorCause::UnsupportedService),
                k if k == sa::EVENT_TIMESTAMP
                    || k == sa::MESSAGE_AUTHENTICATOR
                    || k == sa::STATE
                    || k == sa::ACCT_TERMINATE_CAUSE => {}
                k if req.code == Code::CoaRequest && attrs::is_authorization_attribute(k) => {
                    changes.push(a.clone())
                }
                _ => return Err(ErrorCause::UnsupportedAttribute),
            }
        }
        if IDENTIFICATION.iter().all(|k| req.get(*k).is_none()) {
            return Err(ErrorCause::MissingAttribute);
        }
        if req.code == Code::DisconnectRequest {
            return sessions.disconnect(&who);
        }
        if changes.is_empty() {
            return Err(ErrorCause::MissingAttribute);
        }
        let change = Change {
            attributes: changes,
        };
        change
            .apply(&mut Authorization::default())
            .map_err(|_| ErrorCause::InvalidAttributeValue)?;
        sessions.change(&who, &change)
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(t, from, ident)) = self.order.front() {
            if now.since(t) < DUPLICATE_WINDOW {
                break;
            }
            self.order.pop_front();
            if self
                .answered
                .get(&(from, ident))
                .is_some_and(|(_, _, at)| *at == t)
            {
                self.answered.remove(&(from, ident));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::crypto::{sign_request, verify_reply};
    use crate::radius::dict::tollgate as tg;

    const SECRET: &[u8] = b"coa-secret";

    #[derive(Default)]
    struct Sessions {
        live: Vec<String>,
        changed: Vec<(String, Authorization)>,
    }

    impl SessionDirectory for Sessions {
        fn disconnect(&mut self, who: &SessionRef) -> Result<(), ErrorCause> {
            let id = who.session_id.clone().unwrap_or_default();
            let before = self.live.len();
            self.live.retain(|s| *s != id);
            if self.live.len() < before {
                Ok(())
            } else {
                Err(ErrorCause::SessionContextNotFound)
            }
        }
        fn change(&mut self, who: &SessionRef, change: &Change) -> Result<(), ErrorCause> {
            let id = who.session_id.clone().unwrap_or_default();
            if !self.live.contains(&id) {
                return Err(ErrorCause::SessionContextNotFound);
            }
            let mut a = Authorization::default();
            change
                .apply(&mut a)
                .map_err(|_| ErrorCause::InvalidRequest)?;
            self.changed.push((id, a));
            Ok(())
        }
    }

    fn listener() -> Listener {
        Listener::new(
            vec![CoaClient {
                addr: IpAddr::from([127, 0, 0, 1]),
                secret: SECRET.to_vec(),
                require_message_authenticator: false,
            }],
            NasIdentity {
                identifier: "tg1".into(),
                ip: None,
            },
        )
    }

    fn from() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40000))
    }

    fn request(code: Code, id: u8, attrs: Vec<Attribute>) -> (Vec<u8>, [u8; 16]) {
        let mut p = Packet::new(code, id);
        p.attributes = attrs;
        let b = sign_request(&p, SECRET).unwrap();
        let auth = b[4..20].try_into().unwrap();
        (b, auth)
    }

    fn sid(s: &str) -> Attribute {
        Attribute::text(sa::ACCT_SESSION_ID, s)
    }

    fn answer_code(
        l: &mut Listener,
        s: &mut Sessions,
        b: &[u8],
        auth: [u8; 16],
    ) -> (Code, Option<u32>) {
        let out = l.handle(Instant(1), 1_700_000_000, from(), b, s).unwrap();
        let p = verify_reply(&out, &auth, SECRET, true).unwrap();
        (p.code, p.get(sa::ERROR_CAUSE).map(|a| a.as_u32().unwrap()))
    }

    #[test]
    fn disconnect_known_and_unknown() {
        let mut l = listener();
        let mut s = Sessions {
            live: vec!["s1".into()],
            ..Default::default()
        };
        let (b, a) = request(Code::DisconnectRequest, 1, vec![sid("s1")]);
        assert_eq!(
            answer_code(&mut l, &mut s, &b, a),
            (Code::DisconnectAck, None)
        );
        assert!(s.live.is_empty());
        // A retransmission gets the same ACK, not a NAK for the now-gone session.
        assert_eq!(
            answer_code(&mut l, &mut s, &b, a),
            (Code::DisconnectAck, None)
        );
        assert_eq!(l.stats().duplicates, 1);
        let (b, a) = request(Code::DisconnectRequest, 2, vec![sid("nope")]);
        assert_eq!(
            answer_code(&mut l, &mut s, &b, a),
            (Code::DisconnectNak, Some(503))
        );
    }

    #[test]
    fn coa_changes_limits() {
        let mut l = listener();
        let mut s = Sessions {
            live: vec!["s1".into()],
            ..Default::default()
        };
        let (b, a) = request(
            Code::CoaRequest,
            3,
            vec![
                sid("s1"),
                Attribute::u64(tg::BANDWIDTH_DOWN, 2_000_000),
                Attribute::u32(sa::SESSION_TIMEOUT, 600),
            ],
        );
        assert_eq!(answer_code(&mut l, &mut s, &b, a), (Code::CoaAck, None));
        let (_, auth) = &s.changed[0];
        assert_eq!(auth.bandwidth_down, Some(2_000_000));
        assert_eq!(auth.conditions.session_time_s, Some(600));
    }

    #[test]
    fn naks_with_error_causes() {
        let mut l = listener();
        let mut s = Sessions {
            live: vec!["s1".into()],
            ..Default::default()
        };
        let cases = [
            (
                Code::DisconnectRequest,
                vec![Attribute::u32(sa::SESSION_TIMEOUT, 1), sid("s1")],
                401,
            ),
            (
                Code::DisconnectRequest,
                vec![Attribute::text(sa::REPLY_MESSAGE, "x")],
                401,
            ),
            (
                Code::DisconnectRequest,
                vec![Attribute::text(sa::NAS_IDENTIFIER, "other"), sid("s1")],
                403,
            ),
            (Code::CoaRequest, vec![sid("s1")], 402),
            (
                Code::CoaRequest,
                vec![Attribute::u32(sa::SESSION_TIMEOUT, 1)],
                402,
            ),
            (
                Code::CoaRequest,
                vec![sid("s1"), Attribute::u32(sa::SERVICE_TYPE, 17)],
                405,
            ),
            (
                Code::CoaRequest,
                vec![sid("s1"), Attribute::u32(tg::VOLUME_LIMIT, 5)],
                407,
            ),
            (
                Code::CoaRequest,
                vec![sid("gone"), Attribute::u32(sa::IDLE_TIMEOUT, 5)],
                503,
            ),
        ];
        for (i, (code, attrs, want)) in cases.into_iter().enumerate() {
            let (b, a) = request(code, 10 + i as u8, attrs);
            let (got, cause) = answer_code(&mut l, &mut s, &b, a);
            assert!(
                matches!(got, Code::DisconnectNak | Code::CoaNak),
                "case {i}"
            );
            assert_eq!(cause, Some(want), "case {i}");
        }
        assert_eq!(s.live, vec!["s1".to_string()]);
    }

    #[test]
    fn drops_are_silent_and_counted() {
        let mut l = listener();
        let mut s = Sessions {
            live: vec!["s1".into()],
            ..Default::default()
        };
        let (b, _) = request(Code::DisconnectRequest, 1, vec![sid("s1")]);
        let stranger = SocketAddr::from(([127, 0, 0, 2], 1));
        assert!(l.handle(Instant(1), 0, stranger, &b, &mut s).is_none());
        let mut wrong = Packet::new(Code::DisconnectRequest, 2);
        wrong.push(sid("s1"));
        let wb = sign_request(&wrong, b"not-the-secret").unwrap();
        assert!(l.handle(Instant(1), 0, from(), &wb, &mut s).is_none());
        assert!(
            l.handle(Instant(1), 0, from(), &[40, 1, 0], &mut s)
                .is_none()
        );
        let (old, _) = request(
            Code::DisconnectRequest,
            3,
            vec![sid("s1"), Attribute::u32(sa::EVENT_TIMESTAMP, 1_000)],
        );
        assert!(
            l.handle(Instant(1), 1_700_000_000, from(), &old, &mut s)
                .is_none()
        );
        let st = l.stats();
        assert_eq!(
            (
                st.unknown_client,
                st.bad_authenticator,
                st.malformed,
                st.stale,
                st.requests
            ),
            (1, 1, 1, 1, 0)
        );
        assert_eq!(s.live.len(), 1);
    }

    #[test]
    fn duplicate_cache_expires() {
        let mut l = listener();
        let mut s = Sessions {
            live: vec!["s1".into()],
            ..Default::default()
        };
        let (b, _) = request(Code::DisconnectRequest, 1, vec![sid("s1")]);
        l.handle(Instant(1), 0, from(), &b, &mut s).unwrap();
        let later = Instant(1) + DUPLICATE_WINDOW;
        let out = l.handle(later, 0, from(), &b, &mut s).unwrap();
        assert_eq!(Packet::decode(&out).unwrap().code, Code::DisconnectNak);
    }
}
