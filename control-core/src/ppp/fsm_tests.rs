//! Every cell of RFC 1661's state transition table, and the restart counter and timer
//! with a fake clock.

use super::*;

/// RFC 1661 section 4.1, copied verbatim (options in lower case after the state number:
/// `p` passive, `r` restart, `x` crossed connection; they do not change the transition
/// this implementation makes).
const RFC_1661_TABLE: &str = "
      | State
      |    0         1         2         3         4         5
Events| Initial   Starting  Closed    Stopped   Closing   Stopping
------+-----------------------------------------------------------
 Up   |    2     irc,scr/6     -         -         -         -
 Down |    -         -         0       tls/1       0         1
 Open |  tls/1       1     irc,scr/6     3r        5r        5r
 Close|    0       tlf/0       2         2         4         4
  TO+ |    -         -         -         -       str/4     str/5
  TO- |    -         -         -         -       tlf/2     tlf/3
 RCR+ |    -         -       sta/2 irc,scr,sca/8   4         5
 RCR- |    -         -       sta/2 irc,scr,scn/6   4         5
 RCA  |    -         -       sta/2     sta/3       4         5
 RCN  |    -         -       sta/2     sta/3       4         5
 RTR  |    -         -       sta/2     sta/3     sta/4     sta/5
 RTA  |    -         -         2         3       tlf/2     tlf/3
 RUC  |    -         -       scj/2     scj/3     scj/4     scj/5
 RXJ+ |    -         -         2         3         4         5
 RXJ- |    -         -       tlf/2     tlf/3     tlf/2     tlf/3
 RXR  |    -         -         2         3         4         5

      | State
      |    6         7         8           9
Events| Req-Sent  Ack-Rcvd  Ack-Sent    Opened
------+-----------------------------------------
 Up   |    -         -         -           -
 Down |    1         1         1         tld/1
 Open |    6         7         8           9r
 Close|irc,str/4 irc,str/4 irc,str/4 tld,irc,str/4
  TO+ |  scr/6     scr/6     scr/8         -
  TO- |  tlf/3p    tlf/3p    tlf/3p        -
 RCR+ |  sca/8   sca,tlu/9   sca/8   tld,scr,sca/8
 RCR- |  scn/6     scn/7     scn/6   tld,scr,scn/6
 RCA  |  irc/7     scr/6x  irc,tlu/9   tld,scr/6x
 RCN  |irc,scr/6   scr/6x  irc,scr/8   tld,scr/6x
 RTR  |  sta/6     sta/6     sta/6   tld,zrc,sta/5
 RTA  |    6         6         8       tld,scr/6
 RUC  |  scj/6     scj/7     scj/8       scj/9
 RXJ+ |    6         6         8           9
 RXJ- |  tlf/3     tlf/3     tlf/3   tld,irc,str/5
 RXR  |    6         7         8       ser/9
";

fn event_named(s: &str) -> Event {
    match s {
        "Up" => Event::Up,
        "Down" => Event::Down,
        "Open" => Event::Open,
        "Close" => Event::Close,
        "TO+" => Event::TimeoutRetry,
        "TO-" => Event::TimeoutGiveUp,
        "RCR+" => Event::RcrGood,
        "RCR-" => Event::RcrBad,
        "RCA" => Event::Rca,
        "RCN" => Event::Rcn,
        "RTR" => Event::Rtr,
        "RTA" => Event::Rta,
        "RUC" => Event::Ruc,
        "RXJ+" => Event::RxjGood,
        "RXJ-" => Event::RxjBad,
        "RXR" => Event::Rxr,
        other => panic!("unknown event {other}"),
    }
}

fn action_named(s: &str) -> Action {
    *Action::ORDER
        .iter()
        .find(|a| a.name() == s)
        .unwrap_or_else(|| panic!("unknown action {s}"))
}

/// Parses a cell: `-`, or `[actions/]state[options]`.
fn cell(s: &str) -> Cell {
    if s == "-" {
        return None;
    }
    let (acts, st) = match s.split_once('/') {
        Some((a, st)) => (a.split(',').map(action_named).collect::<Vec<_>>(), st),
        None => (Vec::new(), s),
    };
    let digits: String = st.chars().take_while(char::is_ascii_digit).collect();
    let state = State::ALL[digits.parse::<usize>().unwrap()];
    Some((Actions::of(&acts), state))
}

/// The table as (state, event) -> cell, from the text above.
type Cell = Option<(Actions, State)>;

fn rfc_cells() -> Vec<(State, Event, Cell)> {
    let mut out = Vec::new();
    let mut first_state = 0;
    for line in RFC_1661_TABLE.lines() {
        let Some((head, rest)) = line.split_once('|') else {
            continue;
        };
        let head = head.trim();
        if head.is_empty() {
            if let Some(n) = rest.split_whitespace().next().and_then(|t| t.parse().ok()) {
                first_state = n;
            }
            continue;
        }
        if head == "Events" {
            continue;
        }
        let ev = event_named(head);
        // Cells are separated by runs of spaces; a cell never contains a space.
        for (i, c) in rest.split_whitespace().enumerate() {
            out.push((State::ALL[first_state + i], ev, cell(c)));
        }
    }
    out
}

#[test]
fn every_cell_of_the_rfc_table() {
    let cells = rfc_cells();
    assert_eq!(cells.len(), 160, "10 states x 16 events");
    for (state, event, want) in cells {
        assert_eq!(
            transition(state, event),
            want,
            "{} on {:?}",
            state.name(),
            event
        );
    }
}

#[test]
fn illegal_events_are_counted_and_change_nothing() {
    let mut f = Fsm::new(Limits::default());
    assert_eq!(f.event(Instant(0), Event::RcrGood), Actions::NONE);
    assert_eq!(f.state(), State::Initial);
    assert_eq!(f.illegal_events(), 1);
}

fn opened(f: &mut Fsm, now: Instant) {
    f.event(now, Event::Up);
    f.event(now, Event::Open);
    f.event(now, Event::RcrGood);
    let a = f.event(now, Event::Rca);
    assert!(a.has(Action::Tlu));
    assert_eq!(f.state(), State::Opened);
}

#[test]
fn configure_requests_are_retried_max_configure_times_then_tlf() {
    let limits = Limits {
        max_configure: 4,
        ..Limits::default()
    };
    let mut f = Fsm::new(limits);
    let t0 = Instant(1_000);
    assert_eq!(f.event(t0, Event::Open), Actions::of(&[Action::Tls]));
    assert_eq!(f.state(), State::Starting);
    let a = f.event(t0, Event::Up);
    assert_eq!(a, Actions::of(&[Action::Irc, Action::Scr]));
    assert_eq!(f.restart_count(), 3);
    assert_eq!(f.deadline(), Some(t0 + limits.restart));
    // Early: nothing.
    assert!(f.handle_timeout(t0.add_ms(2_999)).is_empty());
    let mut now;
    let mut sent = 1;
    loop {
        now = f.deadline().unwrap();
        let a = f.handle_timeout(now);
        if a.has(Action::Tlf) {
            break;
        }
        assert_eq!(a, Actions::of(&[Action::Scr]));
        sent += 1;
    }
    assert_eq!(sent, 4, "max_configure requests in all");
    assert_eq!(f.state(), State::Stopped);
    assert_eq!(f.deadline(), None);
    assert_eq!(now, t0.add_ms(4 * 3_000));
}

#[test]
fn close_sends_max_terminate_requests() {
    let mut f = Fsm::new(Limits::default());
    let t = Instant(5);
    opened(&mut f, t);
    let a = f.event(t, Event::Close);
    assert_eq!(a, Actions::of(&[Action::Tld, Action::Irc, Action::Str]));
    assert_eq!((f.state(), f.restart_count()), (State::Closing, 1));
    let t1 = f.deadline().unwrap();
    assert_eq!(f.handle_timeout(t1), Actions::of(&[Action::Str]));
    let t2 = f.deadline().unwrap();
    assert_eq!(f.handle_timeout(t2), Actions::of(&[Action::Tlf]));
    assert_eq!(f.state(), State::Closed);
    assert_eq!(t2, t.add_ms(6_000));
}

#[test]
fn terminate_ack_ends_closing_early() {
    let mut f = Fsm::new(Limits::default());
    opened(&mut f, Instant(0));
    f.event(Instant(0), Event::Close);
    assert_eq!(f.event(Instant(1), Event::Rta), Actions::of(&[Action::Tlf]));
    assert_eq!((f.state(), f.deadline()), (State::Closed, None));
}

#[test]
fn terminate_request_in_opened_waits_one_restart_period() {
    let mut f = Fsm::new(Limits::default());
    opened(&mut f, Instant(0));
    let a = f.event(Instant(10), Event::Rtr);
    assert_eq!(a, Actions::of(&[Action::Tld, Action::Zrc, Action::Sta]));
    assert_eq!(f.state(), State::Stopping);
    assert_eq!(f.deadline(), Some(Instant(10).add_ms(3_000)));
    assert_eq!(
        f.handle_timeout(Instant(10).add_ms(3_000)),
        Actions::of(&[Action::Tlf])
    );
    assert_eq!(f.state(), State::Stopped);
}

#[test]
fn timer_stops_when_opened_and_actions_come_in_rfc_order() {
    let mut f = Fsm::new(Limits::default());
    opened(&mut f, Instant(0));
    assert_eq!(f.deadline(), None);
    let a = f.event(Instant(1), Event::RcrGood);
    let order: Vec<_> = a.iter().map(Action::name).collect();
    assert_eq!(order, ["tld", "scr", "sca"]);
    assert!(f.deadline().is_some());
    f.open_by_proxy();
    assert_eq!((f.state(), f.deadline()), (State::Opened, None));
}
