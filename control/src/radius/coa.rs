//! The RFC 5176 listener, sans-I/O: Disconnect-Request and CoA-Request from configured
//! clients (source address and shared secret), answered with ACK or NAK and an
//! Error-Cause. What happens to the session is the [`SessionDirectory`]'s business.
//!
//! A request is dropped silently (and counted) when it comes from an address that is not
//! a configured client, when its Request Authenticator or Message-Authenticator does not
//! verify (wrong secret), when it is malformed, when it has no Event-Timestamp and its
//! client requires one (the default), or when its Event-Timestamp is more than
//! [`EVENT_WINDOW_S`] from our clock (RFC 5176 §6.4, replay protection).
//!
//! Replays and retransmissions: every answered request is remembered (by client address
//! and Request Authenticator, which covers the identifier and every attribute) for as
//! long as its Event-Timestamp keeps it acceptable, that is until `Event-Timestamp +
//! EVENT_WINDOW_S` (and at least [`EVENT_WINDOW_S`] from its arrival). A request seen
//! again in that time, from any source port, gets the cached answer and changes nothing:
//! a retried Disconnect-Request is not NAKed for the session it already ended, and an
//! authentic one captured and replayed later cannot end the user's next session. After
//! that time the same bytes fail the Event-Timestamp check. At most
//! [`DUPLICATE_CAPACITY`] answers are kept; while the cache is full a new request is
//! NAKed with Error-Cause 506 (Resources-Unavailable) without being acted on.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use hashbrown::HashMap;

use super::attrs::{self, NasIdentity};
use super::crypto::{self, VerifyError};
use super::dict::{ErrorCause, std_attr as sa};
use super::packet::{AttrKey, Attribute, Code, Packet, ValueError};
use crate::authz::Authorization;

/// Seconds an Event-Timestamp may differ from our clock (RFC 5176 §6.4 suggests 300).
pub const EVENT_WINDOW_S: u64 = 300;
/// The most answers the duplicate cache keeps (about 130 bytes each with the key).
pub const DUPLICATE_CAPACITY: usize = 65_536;

/// A client allowed to send CoA and Disconnect requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoaClient {
    /// Its source address (any port).
    pub addr: IpAddr,
    /// The shared secret.
    pub secret: Vec<u8>,
    /// Drop its requests that lack a Message-Authenticator.
    pub require_message_authenticator: bool,
    /// Drop its requests that lack an Event-Timestamp (without one, a captured request
    /// replayed after the duplicate cache forgot it would be acted on again).
    pub require_event_timestamp: bool,
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
    /// Dropped: no Event-Timestamp, and the client must send one.
    pub missing_event_timestamp: u64,
    /// Requests seen before (retransmissions, replays) answered from the cache, not
    /// acted on again.
    pub duplicates: u64,
    /// Requests NAKed (506) because the duplicate cache was full.
    pub cache_full: u64,
}

/// A request remembered: its client's address and its Request Authenticator.
type RequestKey = (IpAddr, [u8; 16]);

/// The CoA / Disconnect listener.
#[derive(Debug)]
pub struct Listener {
    clients: Vec<CoaClient>,
    nas: NasIdentity,
    /// The signed answer of each remembered request, and when it is forgotten (Unix s).
    answered: HashMap<RequestKey, (Vec<u8>, u64)>,
    /// The same, by when each is forgotten.
    expiry: BTreeSet<(u64, RequestKey)>,
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
            expiry: BTreeSet::new(),
            stats: ListenerStats::default(),
        }
    }

    /// What the listener counted.
    pub fn stats(&self) -> ListenerStats {
        self.stats
    }

    /// Answers remembered for duplicate detection.
    pub fn remembered(&self) -> usize {
        self.answered.len()
    }

    /// Handles one datagram from `from` received at `now_unix` (seconds since 1970: the
    /// clock Event-Timestamp and the duplicate cache are measured on). Returns the answer to send
    /// back to `from`, or `None` when the request is dropped.
    pub fn handle(
        &mut self,
        now_unix: u64,
        from: SocketAddr,
        bytes: &[u8],
        sessions: &mut dyn SessionDirectory,
    ) -> Option<Vec<u8>> {
        self.expire(now_unix);
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
        let key = (from.ip(), req.authenticator);
        if let Some((answer, _)) = self.answered.get(&key) {
            self.stats.duplicates += 1;
            tracing::debug!(client = %from, request = req.code.name(), "CoA/Disconnect request seen before: answered from the cache");
            return Some(answer.clone());
        }
        let timestamp = match req.get(sa::EVENT_TIMESTAMP).map(|a| a.as_u32()) {
            Some(Ok(ts)) if (ts as u64).abs_diff(now_unix) <= EVENT_WINDOW_S => Some(ts as u64),
            Some(_) => {
                self.stats.stale += 1;
                tracing::warn!(client = %from, "CoA/Disconnect request with a stale Event-Timestamp dropped");
                return None;
            }
            None if client.require_event_timestamp => {
                self.stats.missing_event_timestamp += 1;
                tracing::warn!(client = %from, "CoA/Disconnect request without Event-Timestamp dropped (require_event_timestamp)");
                return None;
            }
            None => None,
        };
        let secret = client.secret.clone();
        let full = self.answered.len() >= DUPLICATE_CAPACITY;
        let outcome = if full {
            self.stats.cache_full += 1;
            tracing::warn!(client = %from, remembered = self.answered.len(), "CoA/Disconnect duplicate cache full: request refused (506)");
            Err(ErrorCause::ResourcesUnavailable)
        } else {
            self.decide(&req, sessions)
        };
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
        if !full {
            // Kept while the same bytes would pass the Event-Timestamp check.
            let until = timestamp.unwrap_or(now_unix).max(now_unix) + EVENT_WINDOW_S;
            self.answered.insert(key, (bytes.clone(), until));
            self.expiry.insert((until, key));
        }
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

    /// Forgets the answers whose requests would now fail the Event-Timestamp check.
    fn expire(&mut self, now_unix: u64) {
        while let Some(&(until, key)) = self.expiry.first() {
            if until >= now_unix {
                break;
            }
            self.expiry.pop_first();
            self.answered.remove(&key);
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

    /// Our clock in the tests (Unix seconds).
    const T0: u64 = 1_700_000_000;

    fn listener() -> Listener {
        Listener::new(
            vec![CoaClient {
                addr: IpAddr::from([127, 0, 0, 1]),
                secret: SECRET.to_vec(),
                require_message_authenticator: false,
                require_event_timestamp: true,
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

    /// A signed request; an Event-Timestamp of `T0` is added unless `attrs` has one.
    fn request(code: Code, id: u8, attrs: Vec<Attribute>) -> (Vec<u8>, [u8; 16]) {
        let mut p = Packet::new(code, id);
        p.attributes = attrs;
        if p.get(sa::EVENT_TIMESTAMP).is_none() {
            p.push(Attribute::u32(sa::EVENT_TIMESTAMP, T0 as u32));
        }
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
        let out = l.handle(T0, from(), b, s).unwrap();
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
        assert!(l.handle(T0, stranger, &b, &mut s).is_none());
        let mut wrong = Packet::new(Code::DisconnectRequest, 2);
        wrong.push(sid("s1"));
        let wb = sign_request(&wrong, b"not-the-secret").unwrap();
        assert!(l.handle(T0, from(), &wb, &mut s).is_none());
        assert!(l.handle(T0, from(), &[40, 1, 0], &mut s).is_none());
        let (old, _) = request(
            Code::DisconnectRequest,
            3,
            vec![sid("s1"), Attribute::u32(sa::EVENT_TIMESTAMP, 1_000)],
        );
        assert!(l.handle(T0, from(), &old, &mut s).is_none());
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

    /// Signs `attrs` as a request without adding an Event-Timestamp.
    fn unstamped(code: Code, id: u8, attrs: Vec<Attribute>) -> Vec<u8> {
        let mut p = Packet::new(code, id);
        p.attributes = attrs;
        sign_request(&p, SECRET).unwrap()
    }

    #[test]
    fn event_timestamp_is_required_by_default() {
        let mut l = listener();
        let mut s = Sessions {
            live: vec!["s1".into()],
            ..Default::default()
        };
        let b = unstamped(Code::DisconnectRequest, 1, vec![sid("s1")]);
        assert!(l.handle(T0, from(), &b, &mut s).is_none());
        assert_eq!(l.stats().missing_event_timestamp, 1);
        assert_eq!(l.stats().requests, 0);
        assert_eq!(s.live.len(), 1);
        // The window is inclusive on both sides.
        for (id, ts, answered) in [
            (2, T0 - EVENT_WINDOW_S - 1, false),
            (3, T0 + EVENT_WINDOW_S + 1, false),
            (4, T0 - EVENT_WINDOW_S, true),
            (5, T0 + EVENT_WINDOW_S, true),
        ] {
            let (b, _) = request(
                Code::CoaRequest,
                id,
                vec![
                    sid("s1"),
                    Attribute::u32(sa::IDLE_TIMEOUT, 5),
                    Attribute::u32(sa::EVENT_TIMESTAMP, ts as u32),
                ],
            );
            assert_eq!(l.handle(T0, from(), &b, &mut s).is_some(), answered, "{ts}");
        }
        assert_eq!(l.stats().stale, 2);
        // A client configured not to require it is served without one.
        let mut lax = listener();
        lax.clients[0].require_event_timestamp = false;
        let out = lax.handle(T0, from(), &b_unstamped_coa(), &mut s).unwrap();
        assert_eq!(Packet::decode(&out).unwrap().code, Code::CoaAck);
    }

    fn b_unstamped_coa() -> Vec<u8> {
        unstamped(
            Code::CoaRequest,
            9,
            vec![sid("s1"), Attribute::u32(sa::IDLE_TIMEOUT, 5)],
        )
    }

    /// The fault of issue 12 item 12: an authentic Disconnect-Request replayed 32 s
    /// later (past the old 30 s cache, inside the 300 s Event-Timestamp window) ended the
    /// user's next session. Now it gets the first answer and ends nothing, from any
    /// source port, for as long as its timestamp would be accepted.
    #[test]
    fn a_replayed_disconnect_is_answered_from_the_cache_and_ends_nothing() {
        let mut l = listener();
        let mut s = Sessions {
            live: vec!["s1".into()],
            ..Default::default()
        };
        let (b, auth) = request(Code::DisconnectRequest, 7, vec![sid("s1")]);
        let first = l.handle(T0, from(), &b, &mut s).unwrap();
        assert_eq!(
            verify_reply(&first, &auth, SECRET, true).unwrap().code,
            Code::DisconnectAck
        );
        assert!(s.live.is_empty());
        // The user logs in again (the same identification, as a reused Acct-Session-Id,
        // User-Name or Framed-IP-Address would give).
        s.live.push("s1".into());
        let elsewhere = SocketAddr::from(([127, 0, 0, 1], 40001));
        for (later, src) in [(32, from()), (33, elsewhere), (EVENT_WINDOW_S, from())] {
            let again = l.handle(T0 + later, src, &b, &mut s).unwrap();
            assert_eq!(again, first, "{later} s later: the cached answer");
            assert_eq!(s.live, vec!["s1".to_string()], "{later} s later");
        }
        assert_eq!(l.stats().duplicates, 3);
        assert_eq!((l.stats().requests, l.stats().acks), (1, 1));
        // Past the window the cache forgets it, and the timestamp check drops it.
        assert!(
            l.handle(T0 + EVENT_WINDOW_S + 1, from(), &b, &mut s)
                .is_none()
        );
        assert_eq!(l.remembered(), 0);
        assert_eq!(l.stats().stale, 1);
        assert_eq!(s.live, vec!["s1".to_string()]);
    }

    /// A request stamped ahead of our clock stays acceptable until its timestamp plus
    /// the window: the cache keeps it that long.
    #[test]
    fn the_cache_covers_a_timestamp_ahead_of_our_clock() {
        let mut l = listener();
        let mut s = Sessions {
            live: vec!["s1".into()],
            ..Default::default()
        };
        let ahead = T0 + 200;
        let (b, _) = request(
            Code::DisconnectRequest,
            1,
            vec![sid("s1"), Attribute::u32(sa::EVENT_TIMESTAMP, ahead as u32)],
        );
        l.handle(T0, from(), &b, &mut s).unwrap();
        s.live.push("s1".into());
        let last = ahead + EVENT_WINDOW_S;
        l.handle(last, from(), &b, &mut s).unwrap();
        assert_eq!(s.live.len(), 1, "still remembered at {last}");
        assert!(l.handle(last + 1, from(), &b, &mut s).is_none());
        assert_eq!(s.live.len(), 1);
    }

    /// A new request from the same port with the same identifier (a new authenticator)
    /// is a new request, not a duplicate.
    #[test]
    fn a_reused_identifier_with_new_content_is_acted_on() {
        let mut l = listener();
        let mut s = Sessions {
            live: vec!["s1".into(), "s2".into()],
            ..Default::default()
        };
        let (b1, _) = request(Code::DisconnectRequest, 1, vec![sid("s1")]);
        let (b2, _) = request(Code::DisconnectRequest, 1, vec![sid("s2")]);
        l.handle(T0, from(), &b1, &mut s).unwrap();
        l.handle(T0 + 1, from(), &b2, &mut s).unwrap();
        assert!(s.live.is_empty());
        assert_eq!((l.stats().acks, l.stats().duplicates), (2, 0));
    }

    #[test]
    fn a_full_cache_refuses_without_acting() {
        let mut l = listener();
        let mut s = Sessions {
            live: vec!["s1".into()],
            ..Default::default()
        };
        for i in 0..DUPLICATE_CAPACITY as u32 {
            let key = (IpAddr::from([127, 0, 0, 1]), {
                let mut a = [0u8; 16];
                a[..4].copy_from_slice(&i.to_be_bytes());
                a
            });
            l.answered.insert(key, (Vec::new(), T0 + EVENT_WINDOW_S));
            l.expiry.insert((T0 + EVENT_WINDOW_S, key));
        }
        let (b, auth) = request(Code::DisconnectRequest, 1, vec![sid("s1")]);
        let out = l.handle(T0, from(), &b, &mut s).unwrap();
        let p = verify_reply(&out, &auth, SECRET, true).unwrap();
        assert_eq!(p.code, Code::DisconnectNak);
        assert_eq!(p.get(sa::ERROR_CAUSE).unwrap().as_u32().unwrap(), 506);
        assert_eq!(s.live.len(), 1);
        assert_eq!(l.stats().cache_full, 1);
        // Once the old answers expire, the same request is served.
        let out = l.handle(T0 + EVENT_WINDOW_S + 1, from(), &b, &mut s);
        assert!(out.is_none(), "its own timestamp is stale by now");
        let (b, _) = request(
            Code::DisconnectRequest,
            2,
            vec![
                sid("s1"),
                Attribute::u32(sa::EVENT_TIMESTAMP, (T0 + EVENT_WINDOW_S + 1) as u32),
            ],
        );
        l.handle(T0 + EVENT_WINDOW_S + 1, from(), &b, &mut s)
            .unwrap();
        assert!(s.live.is_empty());
        assert_eq!(l.remembered(), 1);
    }
}
