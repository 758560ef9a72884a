//! The option negotiation automaton of RFC 1661 section 4, shared by LCP, IPCP and
//! IPv6CP: ten states, sixteen events, the restart timer and counter.
//!
//! [`transition`] is the state table itself, a pure function (tested against the RFC's
//! table, transcribed verbatim in the tests). [`Fsm`] adds the restart counter
//! (`irc`/`zrc`, decremented by every Configure- or Terminate-Request sent) and the restart
//! timer, which runs exactly in the states that wait for an answer (Closing, Stopping,
//! Req-Sent, Ack-Rcvd, Ack-Sent). The layer actions (`tlu`, `tld`, `tls`, `tlf`) and the
//! packets to send (`scr`, `sca`, `scn`, `str`, `sta`, `scj`, `ser`) go back to the
//! protocol that owns the automaton, in the order RFC 1661 lists them.
//!
//! Options not implemented: the "restart" option of the Open event in Stopped, Stopping,
//! Closing and Opened (`3r`, `5r`, `9r`) is not taken (the state stays), and the
//! "passive" option (`3p`) is not used: an access server always starts negotiating.

use core::time::Duration;

use crate::time::Instant;

/// A state of the automaton (RFC 1661 section 4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// 0: lower layer down, no Open.
    Initial,
    /// 1: Open given, lower layer down.
    Starting,
    /// 2: lower layer up, no Open.
    Closed,
    /// 3: the automaton finished (tlf), waiting for Down or a peer's request.
    Stopped,
    /// 4: Terminate-Request sent after Close.
    Closing,
    /// 5: Terminate-Request sent (or received) without Close.
    Stopping,
    /// 6: our Configure-Request sent.
    ReqSent,
    /// 7: our Configure-Request acknowledged, the peer's not yet.
    AckRcvd,
    /// 8: the peer's Configure-Request acknowledged, ours not yet.
    AckSent,
    /// 9: both acknowledged.
    Opened,
}

impl State {
    /// All states, in the RFC's order.
    pub const ALL: [State; 10] = [
        State::Initial,
        State::Starting,
        State::Closed,
        State::Stopped,
        State::Closing,
        State::Stopping,
        State::ReqSent,
        State::AckRcvd,
        State::AckSent,
        State::Opened,
    ];

    /// The RFC's name, lower case (as `ctl show session` prints it).
    pub fn name(self) -> &'static str {
        match self {
            State::Initial => "initial",
            State::Starting => "starting",
            State::Closed => "closed",
            State::Stopped => "stopped",
            State::Closing => "closing",
            State::Stopping => "stopping",
            State::ReqSent => "req-sent",
            State::AckRcvd => "ack-rcvd",
            State::AckSent => "ack-sent",
            State::Opened => "opened",
        }
    }

    /// Whether the restart timer runs in this state.
    pub fn timer_runs(self) -> bool {
        matches!(
            self,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        )
    }
}

impl core::fmt::Display for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// An event of the automaton (RFC 1661 section 4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// Lower layer is up.
    Up,
    /// Lower layer is down.
    Down,
    /// Administrative Open.
    Open,
    /// Administrative Close.
    Close,
    /// Timeout with the restart counter above zero.
    TimeoutRetry,
    /// Timeout with the restart counter at zero.
    TimeoutGiveUp,
    /// Receive Configure-Request, acceptable.
    RcrGood,
    /// Receive Configure-Request, not acceptable (Nak or Reject to send).
    RcrBad,
    /// Receive Configure-Ack.
    Rca,
    /// Receive Configure-Nak or Configure-Reject.
    Rcn,
    /// Receive Terminate-Request.
    Rtr,
    /// Receive Terminate-Ack.
    Rta,
    /// Receive unknown code.
    Ruc,
    /// Receive Code-Reject or Protocol-Reject, permitted.
    RxjGood,
    /// Receive Code-Reject or Protocol-Reject, catastrophic.
    RxjBad,
    /// Receive Echo-Request, Echo-Reply or Discard-Request.
    Rxr,
}

impl Event {
    /// All events, in the RFC's order.
    pub const ALL: [Event; 16] = [
        Event::Up,
        Event::Down,
        Event::Open,
        Event::Close,
        Event::TimeoutRetry,
        Event::TimeoutGiveUp,
        Event::RcrGood,
        Event::RcrBad,
        Event::Rca,
        Event::Rcn,
        Event::Rtr,
        Event::Rta,
        Event::Ruc,
        Event::RxjGood,
        Event::RxjBad,
        Event::Rxr,
    ];
}

/// The actions of one transition, as a set; [`Actions::iter`] gives them in the order
/// RFC 1661 writes them (layer-down first, packets, layer-up last).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Actions(u16);

/// One action (RFC 1661 section 4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Action {
    /// This-Layer-Down.
    Tld = 1 << 0,
    /// This-Layer-Started.
    Tls = 1 << 1,
    /// This-Layer-Finished.
    Tlf = 1 << 2,
    /// Initialize-Restart-Count (handled by [`Fsm`]).
    Irc = 1 << 3,
    /// Zero-Restart-Count (handled by [`Fsm`]).
    Zrc = 1 << 4,
    /// Send-Configure-Request.
    Scr = 1 << 5,
    /// Send-Terminate-Request.
    Str = 1 << 6,
    /// Send-Configure-Ack.
    Sca = 1 << 7,
    /// Send-Configure-Nak (or Reject).
    Scn = 1 << 8,
    /// Send-Terminate-Ack.
    Sta = 1 << 9,
    /// Send-Code-Reject.
    Scj = 1 << 10,
    /// Send-Echo-Reply.
    Ser = 1 << 11,
    /// This-Layer-Up.
    Tlu = 1 << 12,
}

impl Action {
    const ORDER: [Action; 13] = [
        Action::Tld,
        Action::Tls,
        Action::Tlf,
        Action::Irc,
        Action::Zrc,
        Action::Scr,
        Action::Str,
        Action::Sca,
        Action::Scn,
        Action::Sta,
        Action::Scj,
        Action::Ser,
        Action::Tlu,
    ];

    /// The RFC's abbreviation.
    pub fn name(self) -> &'static str {
        match self {
            Action::Tld => "tld",
            Action::Tls => "tls",
            Action::Tlf => "tlf",
            Action::Irc => "irc",
            Action::Zrc => "zrc",
            Action::Scr => "scr",
            Action::Str => "str",
            Action::Sca => "sca",
            Action::Scn => "scn",
            Action::Sta => "sta",
            Action::Scj => "scj",
            Action::Ser => "ser",
            Action::Tlu => "tlu",
        }
    }
}

impl Actions {
    /// No action.
    pub const NONE: Actions = Actions(0);

    /// The set of `list`.
    pub const fn of(list: &[Action]) -> Actions {
        let mut bits = 0;
        let mut i = 0;
        while i < list.len() {
            bits |= list[i] as u16;
            i += 1;
        }
        Actions(bits)
    }

    /// Whether `a` is in the set.
    pub fn has(self, a: Action) -> bool {
        self.0 & a as u16 != 0
    }

    /// The actions, in RFC order.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ORDER.into_iter().filter(move |a| self.has(*a))
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The actions of `self` that are also in `other`.
    pub fn only(self, other: Actions) -> Actions {
        Actions(self.0 & other.0)
    }
}

/// The RFC 1661 state table: the actions and next state of `event` in `state`, or `None`
/// where the RFC marks the event illegal (`-`: it cannot happen in a correct
/// implementation; the caller counts and ignores it).
pub fn transition(state: State, event: Event) -> Option<(Actions, State)> {
    use Action::*;
    use Event as E;
    use State as S;
    const fn a(list: &[Action]) -> Actions {
        Actions::of(list)
    }
    let none = Actions::NONE;
    Some(match (state, event) {
        (S::Initial, E::Up) => (none, S::Closed),
        (S::Initial, E::Open) => (a(&[Tls]), S::Starting),
        (S::Initial, E::Close) => (none, S::Initial),
        (S::Initial, _) => return None,

        (S::Starting, E::Up) => (a(&[Irc, Scr]), S::ReqSent),
        (S::Starting, E::Open) => (none, S::Starting),
        (S::Starting, E::Close) => (a(&[Tlf]), S::Initial),
        (S::Starting, _) => return None,

        (S::Closed, E::Down) => (none, S::Initial),
        (S::Closed, E::Open) => (a(&[Irc, Scr]), S::ReqSent),
        (S::Closed, E::Close) => (none, S::Closed),
        (S::Closed, E::RcrGood | E::RcrBad | E::Rca | E::Rcn | E::Rtr) => (a(&[Sta]), S::Closed),
        (S::Closed, E::Rta | E::RxjGood | E::Rxr) => (none, S::Closed),
        (S::Closed, E::Ruc) => (a(&[Scj]), S::Closed),
        (S::Closed, E::RxjBad) => (a(&[Tlf]), S::Closed),
        (S::Closed, _) => return None,

        (S::Stopped, E::Down) => (a(&[Tls]), S::Starting),
        (S::Stopped, E::Open) => (none, S::Stopped),
        (S::Stopped, E::Close) => (none, S::Closed),
        (S::Stopped, E::RcrGood) => (a(&[Irc, Scr, Sca]), S::AckSent),
        (S::Stopped, E::RcrBad) => (a(&[Irc, Scr, Scn]), S::ReqSent),
        (S::Stopped, E::Rca | E::Rcn | E::Rtr) => (a(&[Sta]), S::Stopped),
        (S::Stopped, E::Rta | E::RxjGood | E::Rxr) => (none, S::Stopped),
        (S::Stopped, E::Ruc) => (a(&[Scj]), S::Stopped),
        (S::Stopped, E::RxjBad) => (a(&[Tlf]), S::Stopped),
        (S::Stopped, _) => return None,

        (S::Closing, E::Down) => (none, S::Initial),
        (S::Closing, E::Open) => (none, S::Stopping),
        (S::Closing, E::Close) => (none, S::Closing),
        (S::Closing, E::TimeoutRetry) => (a(&[Str]), S::Closing),
        (S::Closing, E::TimeoutGiveUp | E::Rta | E::RxjBad) => (a(&[Tlf]), S::Closed),
        (S::Closing, E::RcrGood | E::RcrBad | E::Rca | E::Rcn | E::RxjGood | E::Rxr) => {
            (none, S::Closing)
        }
        (S::Closing, E::Rtr) => (a(&[Sta]), S::Closing),
        (S::Closing, E::Ruc) => (a(&[Scj]), S::Closing),
        (S::Closing, E::Up) => return None,

        (S::Stopping, E::Down) => (none, S::Starting),
        (S::Stopping, E::Open) => (none, S::Stopping),
        (S::Stopping, E::Close) => (none, S::Closing),
        (S::Stopping, E::TimeoutRetry) => (a(&[Str]), S::Stopping),
        (S::Stopping, E::TimeoutGiveUp | E::Rta | E::RxjBad) => (a(&[Tlf]), S::Stopped),
        (S::Stopping, E::RcrGood | E::RcrBad | E::Rca | E::Rcn | E::RxjGood | E::Rxr) => {
            (none, S::Stopping)
        }
        (S::Stopping, E::Rtr) => (a(&[Sta]), S::Stopping),
        (S::Stopping, E::Ruc) => (a(&[Scj]), S::Stopping),
        (S::Stopping, E::Up) => return None,

        (S::ReqSent, E::Down) => (none, S::Starting),
        (S::ReqSent, E::Open) => (none, S::ReqSent),
        (S::ReqSent, E::Close) => (a(&[Irc, Str]), S::Closing),
        (S::ReqSent, E::TimeoutRetry) => (a(&[Scr]), S::ReqSent),
        (S::ReqSent, E::TimeoutGiveUp | E::RxjBad) => (a(&[Tlf]), S::Stopped),
        (S::ReqSent, E::RcrGood) => (a(&[Sca]), S::AckSent),
        (S::ReqSent, E::RcrBad) => (a(&[Scn]), S::ReqSent),
        (S::ReqSent, E::Rca) => (a(&[Irc]), S::AckRcvd),
        (S::ReqSent, E::Rcn) => (a(&[Irc, Scr]), S::ReqSent),
        (S::ReqSent, E::Rtr) => (a(&[Sta]), S::ReqSent),
        (S::ReqSent, E::Rta | E::RxjGood | E::Rxr) => (none, S::ReqSent),
        (S::ReqSent, E::Ruc) => (a(&[Scj]), S::ReqSent),
        (S::ReqSent, E::Up) => return None,

        (S::AckRcvd, E::Down) => (none, S::Starting),
        (S::AckRcvd, E::Open) => (none, S::AckRcvd),
        (S::AckRcvd, E::Close) => (a(&[Irc, Str]), S::Closing),
        (S::AckRcvd, E::TimeoutRetry | E::Rca | E::Rcn) => (a(&[Scr]), S::ReqSent),
        (S::AckRcvd, E::TimeoutGiveUp | E::RxjBad) => (a(&[Tlf]), S::Stopped),
        (S::AckRcvd, E::RcrGood) => (a(&[Sca, Tlu]), S::Opened),
        (S::AckRcvd, E::RcrBad) => (a(&[Scn]), S::AckRcvd),
        (S::AckRcvd, E::Rtr) => (a(&[Sta]), S::ReqSent),
        (S::AckRcvd, E::Rta | E::RxjGood) => (none, S::ReqSent),
        (S::AckRcvd, E::Ruc) => (a(&[Scj]), S::AckRcvd),
        (S::AckRcvd, E::Rxr) => (none, S::AckRcvd),
        (S::AckRcvd, E::Up) => return None,

        (S::AckSent, E::Down) => (none, S::Starting),
        (S::AckSent, E::Open) => (none, S::AckSent),
        (S::AckSent, E::Close) => (a(&[Irc, Str]), S::Closing),
        (S::AckSent, E::TimeoutRetry) => (a(&[Scr]), S::AckSent),
        (S::AckSent, E::TimeoutGiveUp | E::RxjBad) => (a(&[Tlf]), S::Stopped),
        (S::AckSent, E::RcrGood) => (a(&[Sca]), S::AckSent),
        (S::AckSent, E::RcrBad) => (a(&[Scn]), S::ReqSent),
        (S::AckSent, E::Rca) => (a(&[Irc, Tlu]), S::Opened),
        (S::AckSent, E::Rcn) => (a(&[Irc, Scr]), S::AckSent),
        (S::AckSent, E::Rtr) => (a(&[Sta]), S::ReqSent),
        (S::AckSent, E::Rta | E::RxjGood | E::Rxr) => (none, S::AckSent),
        (S::AckSent, E::Ruc) => (a(&[Scj]), S::AckSent),
        (S::AckSent, E::Up) => return None,

        (S::Opened, E::Down) => (a(&[Tld]), S::Starting),
        (S::Opened, E::Open) => (none, S::Opened),
        (S::Opened, E::Close) => (a(&[Tld, Irc, Str]), S::Closing),
        (S::Opened, E::RcrGood) => (a(&[Tld, Scr, Sca]), S::AckSent),
        (S::Opened, E::RcrBad) => (a(&[Tld, Scr, Scn]), S::ReqSent),
        (S::Opened, E::Rca | E::Rcn | E::Rta) => (a(&[Tld, Scr]), S::ReqSent),
        (S::Opened, E::Rtr) => (a(&[Tld, Zrc, Sta]), S::Stopping),
        (S::Opened, E::Ruc) => (a(&[Scj]), S::Opened),
        (S::Opened, E::RxjGood) => (none, S::Opened),
        (S::Opened, E::RxjBad) => (a(&[Tld, Irc, Str]), S::Stopping),
        (S::Opened, E::Rxr) => (a(&[Ser]), S::Opened),
        (S::Opened, E::Up | E::TimeoutRetry | E::TimeoutGiveUp) => return None,
    })
}

/// The counters and timer of RFC 1661 section 4.6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The restart timer (default 3 s).
    pub restart: Duration,
    /// Configure-Requests sent without an answer before giving up (default 10).
    pub max_configure: u32,
    /// Terminate-Requests sent without an answer before giving up (default 2).
    pub max_terminate: u32,
    /// Configure-Naks sent without an Ack before Naks become Rejects (default 5).
    pub max_failure: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            restart: Duration::from_secs(3),
            max_configure: 10,
            max_terminate: 2,
            max_failure: 5,
        }
    }
}

/// One automaton: state, restart counter and timer.
#[derive(Clone, Debug)]
pub struct Fsm {
    state: State,
    restart_count: u32,
    timer: Option<Instant>,
    limits: Limits,
    illegal: u64,
}

impl Fsm {
    /// An automaton in the Initial state.
    pub fn new(limits: Limits) -> Fsm {
        Fsm {
            state: State::Initial,
            restart_count: 0,
            timer: None,
            limits,
            illegal: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// When the restart timer expires, if it runs.
    pub fn deadline(&self) -> Option<Instant> {
        self.timer
    }

    /// The restart counter.
    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    /// Events the table calls illegal that reached this automaton (a bug or a confused
    /// caller; ignored).
    pub fn illegal_events(&self) -> u64 {
        self.illegal
    }

    /// Applies `event`: updates the counter, the timer and the state, and returns the
    /// actions (including `irc`/`zrc`, already applied) for the owner to carry out.
    pub fn event(&mut self, now: Instant, event: Event) -> Actions {
        let Some((actions, next)) = transition(self.state, event) else {
            self.illegal += 1;
            return Actions::NONE;
        };
        if actions.has(Action::Irc) {
            self.restart_count = if actions.has(Action::Str) {
                self.limits.max_terminate
            } else {
                self.limits.max_configure
            };
        }
        if actions.has(Action::Zrc) {
            self.restart_count = 0;
            self.timer = Some(now + self.limits.restart);
        }
        if actions.has(Action::Scr) || actions.has(Action::Str) {
            self.restart_count = self.restart_count.saturating_sub(1);
            self.timer = Some(now + self.limits.restart);
        }
        self.state = next;
        if !next.timer_runs() {
            self.timer = None;
        }
        actions
    }

    /// If the restart timer expired at `now`: TO+ or TO- (by the counter) applied.
    pub fn handle_timeout(&mut self, now: Instant) -> Actions {
        match self.timer {
            Some(t) if t <= now => {
                self.timer = None;
                let ev = if self.restart_count > 0 {
                    Event::TimeoutRetry
                } else {
                    Event::TimeoutGiveUp
                };
                self.event(now, ev)
            }
            _ => Actions::NONE,
        }
    }

    /// Back to Initial without actions (the session around it finished).
    pub fn reset(&mut self) {
        self.state = State::Initial;
        self.timer = None;
        self.restart_count = 0;
    }

    /// Puts the automaton in Opened without a negotiation: an LNS that accepts the proxy
    /// LCP of RFC 2661 section 4.4.5 (the LAC negotiated on its behalf).
    pub fn open_by_proxy(&mut self) {
        self.state = State::Opened;
        self.timer = None;
        self.restart_count = 0;
    }
}

#[cfg(test)]
#[path = "fsm_tests.rs"]
mod tests;
