//! One control protocol (LCP, IPCP or IPv6CP): the RFC 1661 automaton plus the packets of
//! codes 1..7 (Configure-*, Terminate-*, Code-Reject), generic over the options it
//! negotiates ([`Negotiator`]). LCP's own codes (Protocol-Reject, Echo, Discard) are
//! handled by the session, which owns the LCP instance.

use super::fsm::{Action, Actions, Event, Fsm, Limits, State};
use super::wire::{self, Opt, Packet, code};
use super::{DropReason, Transmit};
use crate::entropy::Entropy;
use crate::time::Instant;

/// How a peer's Configure-Request is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every option acceptable: Configure-Ack.
    Ack,
    /// Configure-Nak with these options (suggested values).
    Nak(Vec<u8>),
    /// Configure-Reject with these options (copied from the request).
    Reject(Vec<u8>),
}

/// Collects Naks and Rejects while a negotiator walks a request. Rejects win (RFC 1661
/// 5.4: a Nak is sent only when every option is recognised); past Max-Failure, Naks of
/// the peer's options become Rejects and hints are dropped.
#[derive(Default)]
pub(crate) struct Judge {
    naks: Vec<u8>,
    naked_originals: Vec<u8>,
    rejects: Vec<u8>,
}

impl Judge {
    /// The peer's option is refused outright.
    pub(crate) fn reject(&mut self, o: Opt<'_>) {
        o.write(&mut self.rejects);
    }

    /// The peer's option is acceptable with `value` instead.
    pub(crate) fn nak(&mut self, o: Opt<'_>, value: &[u8]) {
        wire::put_option(&mut self.naks, o.kind, value);
        o.write(&mut self.naked_originals);
    }

    /// An option the peer did not send but should (RFC 1661 5.3: a Nak may hint).
    pub(crate) fn hint(&mut self, kind: u8, value: &[u8]) {
        wire::put_option(&mut self.naks, kind, value);
    }

    /// The answer.
    pub(crate) fn verdict(self, reject_naks: bool) -> Verdict {
        if !self.rejects.is_empty() {
            Verdict::Reject(self.rejects)
        } else if self.naks.is_empty() {
            Verdict::Ack
        } else if reject_naks {
            if self.naked_originals.is_empty() {
                // Only hints: nothing to reject, so accept what was asked.
                Verdict::Ack
            } else {
                Verdict::Reject(self.naked_originals)
            }
        } else {
            Verdict::Nak(self.naks)
        }
    }
}

/// The options one protocol negotiates.
pub(crate) trait Negotiator {
    /// The options of our next Configure-Request.
    fn request(&mut self) -> Vec<u8>;
    /// Judges the peer's (well-formed) options; remembers them as the candidate that
    /// [`Negotiator::commit_peer`] adopts when the Ack goes out.
    fn check(&mut self, options: &[u8], reject_naks: bool, rng: &mut dyn Entropy) -> Verdict;
    /// The candidate from the last `check` was acknowledged.
    fn commit_peer(&mut self);
    /// The peer Nak'ed our request with these options.
    fn nak_received(&mut self, options: &[u8], rng: &mut dyn Entropy);
    /// The peer rejected these options of our request.
    fn reject_received(&mut self, options: &[u8]);
    /// A new negotiation starts: back to the configured wishes.
    fn reset(&mut self, rng: &mut dyn Entropy);
}

/// What the owner must do after a packet or timeout (the layer actions of the
/// transition, `tlu`/`tld`/`tls`/`tlf`/`ser`, and which event it was).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub actions: Actions,
    pub event: Option<Event>,
}

impl Outcome {
    pub(crate) const NONE: Outcome = Outcome {
        actions: Actions::NONE,
        event: None,
    };

    pub(crate) fn has(&self, a: Action) -> bool {
        self.actions.has(a)
    }
}

/// One control protocol instance.
#[derive(Debug)]
pub(crate) struct Cp<N> {
    pub fsm: Fsm,
    pub neg: N,
    protocol: u16,
    next_id: u8,
    req_id: u8,
    last_req: Vec<u8>,
    reply: Option<(u8, Vec<u8>)>,
    naks_sent: u32,
    terminate_data: Vec<u8>,
    /// The options of the first Configure-Request the peer sent (proxy LCP).
    pub first_peer_req: Option<Vec<u8>>,
    /// The options of the last Configure-Request of the peer that we acknowledged.
    pub last_peer_req: Option<Vec<u8>>,
}

impl<N: Negotiator> Cp<N> {
    pub(crate) fn new(protocol: u16, limits: Limits, neg: N, first_id: u8) -> Cp<N> {
        Cp {
            fsm: Fsm::new(limits),
            neg,
            protocol,
            next_id: first_id,
            req_id: first_id,
            last_req: Vec::new(),
            reply: None,
            naks_sent: 0,
            terminate_data: Vec::new(),
            first_peer_req: None,
            last_peer_req: None,
        }
    }

    pub(crate) fn state(&self) -> State {
        self.fsm.state()
    }

    /// A fresh Identifier for a packet the owner sends on this protocol (Echo-Request,
    /// Protocol-Reject).
    pub(crate) fn next_identifier(&mut self) -> u8 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// The options of our last Configure-Request.
    pub(crate) fn last_request(&self) -> &[u8] {
        &self.last_req
    }

    /// Marks the protocol Opened with `ours` as the request the peer acknowledged and
    /// `peers` as the one we acknowledged (proxy LCP).
    pub(crate) fn open_by_proxy(&mut self, ours: &[u8], first_peer: &[u8], peers: &[u8]) {
        self.last_req = ours.to_vec();
        self.first_peer_req = Some(first_peer.to_vec());
        self.last_peer_req = Some(peers.to_vec());
        self.fsm.open_by_proxy();
    }

    /// Applies an administrative or lower-layer event.
    pub(crate) fn event(
        &mut self,
        now: Instant,
        event: Event,
        rng: &mut dyn Entropy,
        out: &mut Vec<Transmit>,
    ) -> Outcome {
        self.step(now, event, None, rng, out)
    }

    /// Close with `reason` in the Terminate-Request.
    pub(crate) fn close(
        &mut self,
        now: Instant,
        reason: &[u8],
        rng: &mut dyn Entropy,
        out: &mut Vec<Transmit>,
    ) -> Outcome {
        self.terminate_data = reason.to_vec();
        self.event(now, Event::Close, rng, out)
    }

    /// The restart timer, if it expired.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        rng: &mut dyn Entropy,
        out: &mut Vec<Transmit>,
    ) -> Outcome {
        match self.fsm.deadline() {
            Some(t) if t <= now => {
                let ev = if self.fsm.restart_count() > 0 {
                    Event::TimeoutRetry
                } else {
                    Event::TimeoutGiveUp
                };
                self.step(now, ev, None, rng, out)
            }
            _ => Outcome::NONE,
        }
    }

    /// Handles a packet of codes 1..7, or any code for protocols without extra codes
    /// (`extra_codes` false: everything else is an unknown code). Returns `Err` with the
    /// drop reason for packets that are discarded without an event.
    pub(crate) fn input(
        &mut self,
        now: Instant,
        p: &Packet<&[u8]>,
        extra_codes: bool,
        rng: &mut dyn Entropy,
        out: &mut Vec<Transmit>,
    ) -> Result<Outcome, DropReason> {
        let id = p.identifier();
        let data = p.data();
        let event = match p.code() {
            code::CONFIGURE_REQUEST => {
                wire::check_options(data).map_err(|_| DropReason::Malformed)?;
                if self.first_peer_req.is_none() {
                    self.first_peer_req = Some(data.to_vec());
                }
                let reject_naks = self.naks_sent >= self.fsm.limits().max_failure;
                let verdict = if matches!(self.fsm.state(), State::Initial | State::Starting) {
                    // Illegal for the automaton; judge nothing.
                    Verdict::Ack
                } else {
                    self.neg.check(data, reject_naks, rng)
                };
                match verdict {
                    Verdict::Ack => {
                        self.reply = Some((code::CONFIGURE_ACK, data.to_vec()));
                        Event::RcrGood
                    }
                    Verdict::Nak(o) => {
                        self.reply = Some((code::CONFIGURE_NAK, o));
                        Event::RcrBad
                    }
                    Verdict::Reject(o) => {
                        self.reply = Some((code::CONFIGURE_REJECT, o));
                        Event::RcrBad
                    }
                }
            }
            code::CONFIGURE_ACK => {
                if id != self.req_id || data != self.last_req.as_slice() {
                    return Err(DropReason::BadIdentifier);
                }
                Event::Rca
            }
            code::CONFIGURE_NAK | code::CONFIGURE_REJECT => {
                if id != self.req_id {
                    return Err(DropReason::BadIdentifier);
                }
                wire::check_options(data).map_err(|_| DropReason::Malformed)?;
                if p.code() == code::CONFIGURE_NAK {
                    self.neg.nak_received(data, rng);
                } else {
                    // A Reject may only name options we sent (RFC 1661 5.4).
                    let ours: Vec<u8> = wire::options(&self.last_req)
                        .filter_map(Result::ok)
                        .map(|o| o.kind)
                        .collect();
                    if wire::options(data)
                        .filter_map(Result::ok)
                        .any(|o| !ours.contains(&o.kind))
                    {
                        return Err(DropReason::Malformed);
                    }
                    self.neg.reject_received(data);
                }
                Event::Rcn
            }
            code::TERMINATE_REQUEST => Event::Rtr,
            code::TERMINATE_ACK => Event::Rta,
            code::CODE_REJECT => {
                let rejected = *data.first().ok_or(DropReason::Malformed)?;
                if (code::CONFIGURE_REQUEST..=code::CODE_REJECT).contains(&rejected)
                    || (!extra_codes && rejected > code::CODE_REJECT)
                {
                    Event::RxjBad
                } else {
                    Event::RxjGood
                }
            }
            _ => Event::Ruc,
        };
        Ok(self.step(now, event, Some((id, p.packet())), rng, out))
    }

    /// Applies `event` to the automaton and sends the packets of its actions; returns the
    /// layer actions for the owner.
    fn step(
        &mut self,
        now: Instant,
        event: Event,
        rx: Option<(u8, &[u8])>,
        rng: &mut dyn Entropy,
        out: &mut Vec<Transmit>,
    ) -> Outcome {
        let before = self.fsm.state();
        let a = self.fsm.event(now, event);
        if a.has(Action::Scr) && matches!(before, State::Starting | State::Closed | State::Stopped)
        {
            // A negotiation from scratch: back to what the configuration wants.
            self.neg.reset(rng);
            self.naks_sent = 0;
        }
        for act in a.iter() {
            match act {
                Action::Scr => {
                    self.last_req = self.neg.request();
                    self.next_id = self.next_id.wrapping_add(1);
                    self.req_id = self.next_id;
                    out.push(self.packet(code::CONFIGURE_REQUEST, self.req_id, &self.last_req));
                }
                Action::Sca => {
                    if let Some((_, opts)) = self.reply.take() {
                        self.neg.commit_peer();
                        self.naks_sent = 0;
                        let id = rx.map_or(0, |r| r.0);
                        out.push(self.packet(code::CONFIGURE_ACK, id, &opts));
                        self.last_peer_req = Some(opts);
                    }
                }
                Action::Scn => {
                    if let Some((c, opts)) = self.reply.take() {
                        if c == code::CONFIGURE_NAK {
                            self.naks_sent += 1;
                        }
                        let id = rx.map_or(0, |r| r.0);
                        out.push(self.packet(c, id, &opts));
                    }
                }
                Action::Str => {
                    self.next_id = self.next_id.wrapping_add(1);
                    let d = core::mem::take(&mut self.terminate_data);
                    out.push(self.packet(code::TERMINATE_REQUEST, self.next_id, &d));
                    self.terminate_data = d;
                }
                Action::Sta => {
                    let id = rx.map_or(0, |r| r.0);
                    out.push(self.packet(code::TERMINATE_ACK, id, &[]));
                }
                Action::Scj => {
                    if let Some((_, pkt)) = rx {
                        self.next_id = self.next_id.wrapping_add(1);
                        // Keep the reply within the smallest MRU (RFC 1661 5.7 truncates).
                        let pkt = &pkt[..pkt.len().min(1400)];
                        out.push(self.packet(code::CODE_REJECT, self.next_id, pkt));
                    }
                }
                _ => {}
            }
        }
        self.reply = None;
        const LAYER: Actions = Actions::of(&[
            Action::Tlu,
            Action::Tld,
            Action::Tls,
            Action::Tlf,
            Action::Ser,
        ]);
        Outcome {
            actions: a.only(LAYER),
            event: Some(event),
        }
    }

    fn packet(&self, code: u8, id: u8, data: &[u8]) -> Transmit {
        Transmit {
            protocol: self.protocol,
            packet: wire::build(code, id, data),
        }
    }
}
