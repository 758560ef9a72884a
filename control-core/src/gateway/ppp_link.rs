//! What a PPP subscriber's link shares, over PPPoE ([`super::pppoe`]) or an L2TP call at
//! the LNS ([`super::lns`]), besides the PPP engine itself ([`crate::ppp::Session`]): the
//! login its credentials become, and when its subscriber goes into the fast path, and so
//! when its Accounting Start is sent.
//!
//! Not at the first NCP that opens: once every NCP the client asked for (sent a
//! Configure-Request for) is open, so that a dual-stack subscriber's Start carries its
//! IPv4 address and its IPv6 attributes (Framed-IPv6-Prefix; Framed-Interface-Id and
//! Delegated-IPv6-Prefix come with DHCPv6, later, in the Interim and the Stop); or
//! [`NCP_SETTLE`] after the first opened, when the other is slow or never opens. A
//! client that asks for IPv6CP only is installed at IPv6CP: the session keeps the IPv4
//! address its login was granted (unused by the client), as an IPv6-first IPoE
//! subscriber's does. Time is passed in; the caller arms its timer at [`Gate::deadline`].

use std::time::Duration;

use tollgate_dataplane::time::Instant;

use tollgate_dataplane::MacAddr;

use super::aaa::{ChapResponse, LoginRequest};
use crate::ppp::{self, Credentials};
use crate::radius::attrs::PppoeLine;

/// The login of PPP credentials `req` from `mac` on `line` (NAS-Port-Id, circuit and
/// remote ids for RADIUS): PAP's password, CHAP's exchange, or none (no authentication
/// negotiated: a login by MAC).
pub(super) fn login_request(req: &ppp::AuthRequest, mac: MacAddr, line: PppoeLine) -> LoginRequest {
    let (password, chap) = match &req.credentials {
        Credentials::None => (None, None),
        Credentials::Pap { password } => {
            (Some(String::from_utf8_lossy(password).into_owned()), None)
        }
        Credentials::Chap {
            id,
            challenge,
            response,
        } => (
            None,
            Some(ChapResponse {
                id: *id,
                challenge: challenge.clone(),
                response: response.clone(),
            }),
        ),
    };
    LoginRequest {
        user: req.method.map(|_| req.user_lossy()),
        password,
        mac: Some(mac),
        chap,
        line: Some(line),
        ..LoginRequest::default()
    }
}

/// How long an opened NCP waits for the other one the client asked for.
pub const NCP_SETTLE: Duration = Duration::from_secs(2);

/// What [`Gate::decide`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Install {
    /// Install the subscriber now.
    Now,
    /// Not yet: an NCP the client asked for is not open; decide again at this time.
    At(Instant),
    /// No NCP is open.
    NotYet,
}

/// When a link's subscriber is installed (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Gate {
    first_up: Option<Instant>,
}

impl Gate {
    /// An NCP of `ppp` opened, or the timer ran: whether the subscriber goes in now.
    pub(super) fn decide(&mut self, ppp: &ppp::Session, now: Instant) -> Install {
        let (v4, v6) = (ppp.ncp_open(false), ppp.ncp_open(true));
        if !v4 && !v6 {
            return Install::NotYet;
        }
        let first = *self.first_up.get_or_insert(now);
        let waiting = (ppp.ncp_requested(false) && !v4) || (ppp.ncp_requested(true) && !v6);
        let until = first + NCP_SETTLE;
        if !waiting || now >= until {
            Install::Now
        } else {
            Install::At(until)
        }
    }

    /// When [`Gate::decide`] wants to run again, while the subscriber waits.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.first_up.map(|t| t + NCP_SETTLE)
    }
}
