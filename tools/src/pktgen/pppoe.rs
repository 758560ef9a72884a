//! `tollgate pktgen --pppoe`: the generator's subscribers as PPPoE clients.
//!
//! Each subscriber is a small sans-I/O state machine ([`Subscriber`]): PPPoE discovery
//! (PADI, PADO, PADR with the AC-Cookie, PADS) in front of the control core's PPP client
//! engine ([`Client`]: LCP, PAP or CHAP, IPCP), then LCP Terminate-Request and PADT at
//! the end. Frames in and out are whole Ethernet frames (VLAN tags included); time is
//! passed in; the generator owns the ports and calls [`Fleet::timers`]. The [`Fleet`] is
//! N of them on distinct MACs (the subscriber's index is in its MAC, so a received frame
//! finds its subscriber without a lookup table) and lines (untagged, 802.1Q or 1:1 QinQ
//! from VLAN ranges).

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::bail;
use tollgate_control_core::entropy::Sequence;
use tollgate_control_core::ppp::{Client, ClientPhase};
use tollgate_control_core::pppoe::wire::{self as pwire, SessionPacket, code, tag};
use tollgate_control_core::wire::ethernet::{self, Mac, Tag, ethertype};
use tollgate_dataplane::time::Instant;

/// PPP's protocol number of IPv4.
pub const PPP_IPV4: u16 = 0x0021;
const LCP: u16 = 0xc021;
const TERMINATE_ACK: u8 = 6;
/// The first three octets of every generated subscriber MAC (locally administered);
/// the last three are its index.
const MAC_PREFIX: [u8; 3] = [0x02, 0x50, 0x47];
/// The most subscribers the MAC plan holds.
pub const MAX_SUBSCRIBERS: u32 = 1 << 24;

/// A range of VLAN ids, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VlanRange {
    /// First id.
    pub first: u16,
    /// Last id.
    pub last: u16,
}

impl VlanRange {
    fn len(self) -> u32 {
        u32::from(self.last - self.first) + 1
    }
}

impl std::str::FromStr for VlanRange {
    type Err = String;

    /// `100` or `100-199`, ids 1..=4094.
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let p = |x: &str| -> Result<u16, String> {
            match x.trim().parse::<u16>() {
                Ok(v) if (1..=4094).contains(&v) => Ok(v),
                _ => Err(format!("{x:?} is not a VLAN id (1-4094)")),
            }
        };
        let (first, last) = (p(a)?, p(b)?);
        if last < first {
            return Err(format!("{s}: the range ends before it starts"));
        }
        Ok(VlanRange { first, last })
    }
}

/// Which line (VLAN tags) each subscriber is on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VlanPlan {
    /// Outer (S-VLAN) ids; with `inner`, 1:1 QinQ.
    pub outer: Option<VlanRange>,
    /// Inner (C-VLAN) ids; alone, one 802.1Q tag.
    pub inner: Option<VlanRange>,
    /// The outer tag's TPID in QinQ (0x88a8, or 0x8100 / 0x9100).
    pub outer_tpid: u16,
}

impl VlanPlan {
    /// Lines in the plan (1 when untagged); subscribers past it share lines again.
    pub fn lines(&self) -> u32 {
        self.outer.map_or(1, VlanRange::len) * self.inner.map_or(1, VlanRange::len)
    }

    /// The tags of subscriber `i`, outer first: the C-VLAN moves fastest.
    pub fn tags(&self, i: u32) -> Vec<Tag> {
        let tag = |tpid, vid| Tag {
            tpid,
            pcp: 0,
            dei: false,
            vid,
        };
        let i = i % self.lines();
        match (self.outer, self.inner) {
            (None, None) => Vec::new(),
            (Some(r), None) => vec![tag(ethertype::VLAN, r.first + i as u16)],
            (None, Some(r)) => vec![tag(ethertype::VLAN, r.first + i as u16)],
            (Some(o), Some(c)) => vec![
                tag(self.outer_tpid, o.first + (i / c.len()) as u16),
                tag(ethertype::VLAN, c.first + (i % c.len()) as u16),
            ],
        }
    }
}

/// How the subscribers log in and retry.
#[derive(Clone, Debug)]
pub struct PppoeOptions {
    /// Subscriber i's user name is this prefix and i.
    pub user_prefix: String,
    /// Every subscriber's PAP password and CHAP secret.
    pub secret: String,
    /// Lines.
    pub vlans: VlanPlan,
    /// Retransmission time of PADI, PADR, LCP/IPCP requests and Terminate-Request.
    pub retry: Duration,
    /// Sends of one request before the subscriber gives up.
    pub attempts: u32,
}

impl PppoeOptions {
    /// Subscriber `i`'s user name.
    pub fn user(&self, i: u32) -> String {
        format!("{}{i}", self.user_prefix)
    }
}

/// Where a subscriber stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Not started.
    Idle,
    /// PADI sent, waiting for a PADO.
    Discovery,
    /// PADR sent, waiting for the PADS.
    Requesting,
    /// In a PPPoE session, PPP negotiating (LCP, authentication, IPCP).
    Ppp,
    /// IPCP open: the address is known, traffic may flow.
    Up,
    /// Terminate-Request sent, waiting for the Ack (then PADT goes).
    Terminating,
    /// Ended: PADT sent or received.
    Ended,
    /// Gave up, or was refused or ended by the gateway before it was asked to.
    Failed,
}

/// One PPPoE subscriber.
#[derive(Debug)]
pub struct Subscriber {
    index: u32,
    mac: Mac,
    tags: Vec<Tag>,
    host_uniq: [u8; 4],
    ac: Mac,
    session: u16,
    padr: Vec<u8>,
    client: Client,
    stage: Stage,
    deadline: Option<Instant>,
    sends: u32,
    /// Why it failed, for the report.
    pub failure: Option<&'static str>,
    /// When set-up started and ended (IPCP up).
    pub started: Option<Instant>,
    /// When IPCP opened.
    pub up_at: Option<Instant>,
    /// Whether the gateway's PADT ended the session (rather than ours).
    pub padt_received: bool,
    /// Whether we sent PADT.
    pub padt_sent: bool,
    /// Requests sent again after their timer ran out.
    pub retransmits: u32,
}

/// The MAC of subscriber `i`.
pub fn mac_of(i: u32) -> Mac {
    let b = i.to_be_bytes();
    [
        MAC_PREFIX[0],
        MAC_PREFIX[1],
        MAC_PREFIX[2],
        b[1],
        b[2],
        b[3],
    ]
}

/// The subscriber index a generated MAC carries.
pub fn index_of(mac: &[u8]) -> Option<u32> {
    (mac.len() == 6 && mac[..3] == MAC_PREFIX)
        .then(|| u32::from_be_bytes([0, mac[3], mac[4], mac[5]]))
}

impl Subscriber {
    /// Subscriber `i` of `o`.
    pub fn new(i: u32, o: &PppoeOptions) -> Subscriber {
        let client = Client::new(
            o.user(i).as_bytes(),
            o.secret.as_bytes(),
            &mut Sequence::new(0x7067_0000 + u64::from(i)),
        )
        .with_dns(false);
        Subscriber {
            index: i,
            mac: mac_of(i),
            tags: o.vlans.tags(i),
            host_uniq: i.to_be_bytes(),
            ac: ethernet::BROADCAST,
            session: 0,
            padr: Vec::new(),
            client,
            stage: Stage::Idle,
            deadline: None,
            sends: 0,
            failure: None,
            started: None,
            up_at: None,
            padt_received: false,
            padt_sent: false,
            retransmits: 0,
        }
    }

    /// Its index in the fleet.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Where it stands.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The PPPoE session id (0 before PADS).
    pub fn session(&self) -> u16 {
        self.session
    }

    /// The address IPCP gave.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.client.address()
    }

    /// Its MAC.
    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// Its VLAN tags, outer first.
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    fn frame(&self, dst: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(22 + payload.len());
        ethernet::write_header(&mut f, dst, self.mac, &self.tags, ethertype);
        f.extend_from_slice(payload);
        // Ethernet's minimum frame (without FCS), padded as a NIC would.
        if f.len() < 60 {
            f.resize(60, 0);
        }
        f
    }

    fn discovery_tags(&self, cookie: Option<&[u8]>) -> Vec<u8> {
        let mut t = Vec::new();
        pwire::put_tag(&mut t, tag::SERVICE_NAME, b"");
        pwire::put_tag(&mut t, tag::HOST_UNIQ, &self.host_uniq);
        if let Some(c) = cookie {
            pwire::put_tag(&mut t, tag::AC_COOKIE, c);
        }
        t
    }

    fn padi(&self) -> Vec<u8> {
        let p = pwire::build(code::PADI, 0, &self.discovery_tags(None));
        self.frame(ethernet::BROADCAST, ethertype::PPPOE_DISCOVERY, &p)
    }

    fn padt(&self) -> Vec<u8> {
        let p = pwire::build(code::PADT, self.session, &[]);
        self.frame(self.ac, ethertype::PPPOE_DISCOVERY, &p)
    }

    fn arm(&mut self, now: Instant, o: &PppoeOptions) {
        self.deadline = Some(Instant(now.0 + o.retry.as_nanos() as u64));
    }

    fn fail(&mut self, why: &'static str) {
        self.stage = Stage::Failed;
        self.failure = Some(why);
        self.deadline = None;
    }

    /// What the PPP client queued, as session frames.
    fn flush_client(&mut self, out: &mut Vec<Vec<u8>>) {
        while let Some(t) = self.client.poll_transmit() {
            let s = pwire::session_frame(self.session, t.protocol, &t.packet);
            out.push(self.frame(self.ac, ethertype::PPPOE_SESSION, &s));
        }
    }

    /// Starts discovery: PADI.
    pub fn start(&mut self, now: Instant, o: &PppoeOptions, out: &mut Vec<Vec<u8>>) {
        self.stage = Stage::Discovery;
        self.started = Some(now);
        self.sends = 1;
        out.push(self.padi());
        self.arm(now, o);
    }

    /// Ends an open session: LCP Terminate-Request; PADT follows its Ack.
    pub fn terminate(&mut self, now: Instant, o: &PppoeOptions, out: &mut Vec<Vec<u8>>) {
        if self.stage != Stage::Up {
            return;
        }
        self.client.terminate();
        self.flush_client(out);
        self.stage = Stage::Terminating;
        self.sends = 1;
        self.arm(now, o);
    }

    /// A frame for this subscriber (discovery, or session frames that are not IPv4).
    pub fn input(
        &mut self,
        now: Instant,
        o: &PppoeOptions,
        h: &ethernet::Header,
        payload: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) {
        if h.ethertype == ethertype::PPPOE_DISCOVERY {
            let Ok(p) = pwire::Packet::new_checked(payload) else {
                return;
            };
            match (p.code(), self.stage) {
                (code::PADO, Stage::Discovery) => {
                    let cookie = p
                        .tags()
                        .flatten()
                        .find(|t| t.kind == tag::AC_COOKIE)
                        .map(|t| t.value.to_vec());
                    let ours = p
                        .tags()
                        .flatten()
                        .any(|t| t.kind == tag::HOST_UNIQ && t.value == self.host_uniq);
                    if !ours {
                        return;
                    }
                    self.ac = h.src;
                    let padr = pwire::build(code::PADR, 0, &self.discovery_tags(cookie.as_deref()));
                    self.padr = self.frame(self.ac, ethertype::PPPOE_DISCOVERY, &padr);
                    out.push(self.padr.clone());
                    self.stage = Stage::Requesting;
                    self.sends = 1;
                    self.arm(now, o);
                }
                (code::PADS, Stage::Requesting) => {
                    if p.session_id() == 0 {
                        self.fail("PADS with an error");
                        return;
                    }
                    self.session = p.session_id();
                    self.stage = Stage::Ppp;
                    self.client.start();
                    self.flush_client(out);
                    self.sends = 1;
                    self.arm(now, o);
                }
                (code::PADT, _) if p.session_id() == self.session && self.session != 0 => {
                    self.padt_received = true;
                    self.deadline = None;
                    match self.stage {
                        Stage::Terminating | Stage::Ended => self.stage = Stage::Ended,
                        Stage::Failed => {}
                        _ => self.fail("the gateway sent PADT"),
                    }
                }
                _ => {}
            }
            return;
        }
        let Ok(sp) = SessionPacket::new_checked(payload) else {
            return;
        };
        if sp.session_id() != self.session || self.session == 0 {
            return;
        }
        let ppp = sp.ppp_payload();
        if self.stage == Stage::Terminating && sp.protocol() == LCP {
            if ppp.first() == Some(&TERMINATE_ACK) {
                // LCP is down both ways: PADT ends the PPPoE session at once (the
                // gateway's own PADT would wait for its Restart timer, RFC 1661 4.2).
                out.push(self.padt());
                self.padt_sent = true;
                self.stage = Stage::Ended;
                self.deadline = None;
            }
            return;
        }
        self.client.handle_input(sp.protocol(), ppp);
        self.flush_client(out);
        if self.stage == Stage::Ppp {
            // The timer measures the gateway's silence: a slow login (PAP's Argon2)
            // is not a lost request.
            self.arm(now, o);
        }
        match (self.client.phase(), self.stage) {
            (ClientPhase::Up, Stage::Ppp) => {
                self.stage = Stage::Up;
                self.up_at = Some(now);
                self.deadline = None;
            }
            (ClientPhase::Rejected, _) => self.fail("authentication refused"),
            (ClientPhase::Terminated, Stage::Ppp | Stage::Up) => {
                self.fail("the gateway sent Terminate-Request")
            }
            _ => {}
        }
    }

    /// Its timer, if it has one running.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Runs out its timer at `now`: sends the request again, or gives up.
    pub fn timeout(&mut self, now: Instant, o: &PppoeOptions, out: &mut Vec<Vec<u8>>) {
        if self.deadline.is_none_or(|d| d > now) {
            return;
        }
        if self.sends >= o.attempts {
            self.fail(match self.stage {
                Stage::Discovery => "no PADO",
                Stage::Requesting => "no PADS",
                Stage::Ppp => "PPP did not open",
                _ => "no Terminate-Ack",
            });
            return;
        }
        self.sends += 1;
        self.retransmits += 1;
        match self.stage {
            Stage::Discovery => out.push(self.padi()),
            Stage::Requesting => out.push(self.padr.clone()),
            Stage::Ppp => {
                self.client.retransmit();
                self.flush_client(out);
            }
            Stage::Terminating => {
                self.client.terminate();
                self.flush_client(out);
            }
            _ => {}
        }
        self.arm(now, o);
    }

    /// The header of its IPv4 frames up: MACs, tags, PPPoE session header and the PPP
    /// protocol, with the PPPoE length to fill in (at `len - 4`); its length.
    pub fn encap(&self, out: &mut [u8; MAX_ENCAP]) -> usize {
        let mut v = Vec::with_capacity(MAX_ENCAP);
        ethernet::write_header(
            &mut v,
            self.ac,
            self.mac,
            &self.tags,
            ethertype::PPPOE_SESSION,
        );
        v.extend_from_slice(&[pwire::VERSION_TYPE, code::SESSION]);
        v.extend_from_slice(&self.session.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&PPP_IPV4.to_be_bytes());
        out[..v.len()].copy_from_slice(&v);
        v.len()
    }
}

/// The longest [`Subscriber::encap`]: two tags, PPPoE and PPP headers.
pub const MAX_ENCAP: usize = 14 + 8 + 6 + 2;

/// What the subscribers counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FleetReport {
    /// Subscribers.
    pub subscribers: u32,
    /// Sessions that came up (IPCP open).
    pub up: u32,
    /// Subscribers that failed, by reason.
    pub failed: Vec<(String, u32)>,
    /// From the first PADI to the last IPCP open, seconds.
    pub setup_seconds: f64,
    /// CPU time the run's thread (generator, and in memory the gateway too) spent in the
    /// set-up, seconds: on a shared machine the rate per CPU second is the steadier one.
    pub setup_cpu_seconds: f64,
    /// Median and 99th percentile of one subscriber's set-up time, milliseconds.
    pub setup_ms_p50: f64,
    /// 99th percentile.
    pub setup_ms_p99: f64,
    /// From the first Terminate-Request to the last end, seconds.
    pub teardown_seconds: f64,
    /// Sessions ended cleanly (Terminate-Ack, then PADT either way).
    pub ended: u32,
    /// Ended by the gateway's PADT before its Terminate-Ack came.
    pub padt_received: u32,
    /// Ended by our PADT after the Terminate-Ack.
    pub padt_sent: u32,
    /// Requests sent again.
    pub retransmits: u64,
    /// Sessions whose every stamped packet came back, both ways (set after traffic).
    pub sessions_exact: u32,
    /// Sessions with a packet missing (first few: index, sent up, received up, sent
    /// down, received down).
    pub sessions_with_loss: Vec<(u32, [u64; 4])>,
}

impl FleetReport {
    /// Sessions set up per second.
    pub fn setup_rate(&self) -> f64 {
        if self.setup_seconds > 0.0 {
            f64::from(self.up) / self.setup_seconds
        } else {
            0.0
        }
    }

    /// Sessions set up per second of the thread's CPU time.
    pub fn setup_rate_cpu(&self) -> f64 {
        if self.setup_cpu_seconds > 0.0 {
            f64::from(self.up) / self.setup_cpu_seconds
        } else {
            0.0
        }
    }

    /// Sessions ended per second.
    pub fn teardown_rate(&self) -> f64 {
        if self.teardown_seconds > 0.0 {
            f64::from(self.ended) / self.teardown_seconds
        } else {
            0.0
        }
    }
}

/// N subscribers.
#[derive(Debug)]
pub struct Fleet {
    subs: Vec<Subscriber>,
    opts: PppoeOptions,
    next_start: usize,
    next_stop: usize,
    /// Set-up and teardown windows: at most this many in progress at once.
    window: usize,
    in_progress: usize,
    phase_start: Option<Instant>,
    last_event: Instant,
    next_scan: Instant,
    /// The report so far.
    pub report: FleetReport,
}

impl Fleet {
    /// `n` subscribers; at most `window` setting up or ending at once.
    pub fn new(n: u32, opts: PppoeOptions, window: usize) -> anyhow::Result<Fleet> {
        if n == 0 || n > MAX_SUBSCRIBERS {
            bail!("--subscribers must be 1..={MAX_SUBSCRIBERS} with --pppoe");
        }
        if opts.attempts == 0 {
            bail!("--pppoe-attempts must be at least 1");
        }
        let subs = (0..n).map(|i| Subscriber::new(i, &opts)).collect();
        Ok(Fleet {
            subs,
            opts,
            next_start: 0,
            next_stop: 0,
            window: window.max(1),
            in_progress: 0,
            phase_start: None,
            last_event: Instant(0),
            next_scan: Instant(0),
            report: FleetReport {
                subscribers: n,
                ..FleetReport::default()
            },
        })
    }

    /// The subscribers.
    pub fn subscribers(&self) -> &[Subscriber] {
        &self.subs
    }

    /// True once no subscriber is setting up (each is up or failed).
    pub fn set_up(&self) -> bool {
        self.next_start == self.subs.len() && self.in_progress == 0
    }

    /// True once no subscriber is ending.
    pub fn torn_down(&self) -> bool {
        self.next_stop == self.subs.len() && self.in_progress == 0
    }

    fn busy(s: Stage) -> bool {
        matches!(
            s,
            Stage::Discovery | Stage::Requesting | Stage::Ppp | Stage::Terminating
        )
    }

    /// A received frame (not IPv4 in a session): to its subscriber by destination MAC.
    /// False if it is none of theirs.
    pub fn input(&mut self, now: Instant, frame: &[u8], out: &mut Vec<Vec<u8>>) -> bool {
        let Ok(h) = ethernet::Frame::new_unchecked(frame).header() else {
            return false;
        };
        if !matches!(
            h.ethertype,
            ethertype::PPPOE_DISCOVERY | ethertype::PPPOE_SESSION
        ) {
            return false;
        }
        let Some(i) = index_of(&h.dst).filter(|i| (*i as usize) < self.subs.len()) else {
            return false;
        };
        let s = &mut self.subs[i as usize];
        let before = s.stage;
        s.input(now, &self.opts, &h, &frame[h.payload_at..], out);
        self.moved(before, now, i as usize);
        true
    }

    fn moved(&mut self, before: Stage, now: Instant, i: usize) {
        let after = self.subs[i].stage;
        if Self::busy(before) && !Self::busy(after) {
            self.in_progress -= 1;
            self.last_event = now;
        }
    }

    /// Runs out due timers (looked at once a millisecond).
    pub fn timers(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        if now < self.next_scan {
            return;
        }
        self.next_scan = Instant(now.0 + 1_000_000);
        for i in 0..self.subs.len() {
            if self.subs[i].deadline.is_some_and(|d| d <= now) {
                let before = self.subs[i].stage;
                self.subs[i].timeout(now, &self.opts, out);
                self.moved(before, now, i);
            }
        }
    }

    /// Starts subscribers while the set-up window has room.
    pub fn start_more(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        self.phase_start.get_or_insert(now);
        while self.in_progress < self.window && self.next_start < self.subs.len() {
            self.subs[self.next_start].start(now, &self.opts, out);
            self.next_start += 1;
            self.in_progress += 1;
        }
    }

    /// Ends open sessions while the teardown window has room.
    pub fn stop_more(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        while self.in_progress < self.window && self.next_stop < self.subs.len() {
            let s = &mut self.subs[self.next_stop];
            self.next_stop += 1;
            if s.stage == Stage::Up {
                s.terminate(now, &self.opts, out);
                self.in_progress += 1;
            }
        }
    }

    /// Closes the set-up phase's figures; the teardown phase starts.
    pub fn finish_setup(&mut self, now: Instant) {
        let start = self.phase_start.take().unwrap_or(now);
        let mut times: Vec<u64> = self
            .subs
            .iter()
            .filter_map(|s| Some(s.up_at?.0.saturating_sub(s.started?.0)))
            .collect();
        times.sort_unstable();
        let q = |p: f64| {
            times
                .get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)))
                .map_or(0.0, |ns| *ns as f64 / 1e6)
        };
        let r = &mut self.report;
        r.up = times.len() as u32;
        r.setup_ms_p50 = q(0.5);
        r.setup_ms_p99 = q(0.99);
        let last_up = self.subs.iter().filter_map(|s| s.up_at).max();
        r.setup_seconds = last_up.map_or(0.0, |t| t.0.saturating_sub(start.0) as f64 / 1e9);
        self.tally();
    }

    /// Closes the teardown phase's figures.
    pub fn finish_teardown(&mut self) {
        let start = self.phase_start.take().unwrap_or(self.last_event);
        let r = &mut self.report;
        r.teardown_seconds = self.last_event.0.saturating_sub(start.0) as f64 / 1e9;
        r.ended = self.subs.iter().filter(|s| s.stage == Stage::Ended).count() as u32;
        r.padt_received = self.subs.iter().filter(|s| s.padt_received).count() as u32;
        r.padt_sent = self.subs.iter().filter(|s| s.padt_sent).count() as u32;
        self.tally();
    }

    /// Marks the start of the teardown phase.
    pub fn start_teardown(&mut self, now: Instant) {
        self.phase_start = Some(now);
        self.last_event = now;
    }

    fn tally(&mut self) {
        let mut failed: Vec<(String, u32)> = Vec::new();
        for s in &self.subs {
            if let Some(f) = s.failure {
                match failed.iter_mut().find(|(n, _)| n == f) {
                    Some((_, c)) => *c += 1,
                    None => failed.push((f.to_string(), 1)),
                }
            }
        }
        self.report.failed = failed;
        self.report.retransmits = self.subs.iter().map(|s| u64::from(s.retransmits)).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_plan_is_one_to_one_qinq_with_the_c_vlan_fastest() {
        let p = VlanPlan {
            outer: Some("100-101".parse().unwrap()),
            inner: Some("10-12".parse().unwrap()),
            outer_tpid: ethertype::QINQ,
        };
        assert_eq!(p.lines(), 6);
        let ids = |i| {
            let t = p.tags(i);
            (t[0].tpid, t[0].vid, t[1].tpid, t[1].vid)
        };
        assert_eq!(ids(0), (0x88a8, 100, 0x8100, 10));
        assert_eq!(ids(2), (0x88a8, 100, 0x8100, 12));
        assert_eq!(ids(3), (0x88a8, 101, 0x8100, 10));
        assert_eq!(ids(6), ids(0), "lines are shared past the plan");
        assert!(VlanPlan::default().tags(5).is_empty());
        assert!("0".parse::<VlanRange>().is_err());
        assert!("5-4".parse::<VlanRange>().is_err());
        assert!("4095".parse::<VlanRange>().is_err());
    }

    #[test]
    fn macs_carry_the_index() {
        for i in [0, 1, 255, 65_536, MAX_SUBSCRIBERS - 1] {
            assert_eq!(index_of(&mac_of(i)), Some(i));
        }
        assert_eq!(index_of(&[0x02, 0, 0, 0, 0, 1]), None);
    }

    /// The control core's PPP client, as the subscribers drive it: the gateway's IPCP
    /// Configure-Request crossing ours is acknowledged without a second request of
    /// ours (which made the gateway, Opened, restart IPCP without end: PAP sessions
    /// never came up when a login took longer than the retransmission time).
    #[test]
    fn the_client_answers_a_crossing_ipcp_request_with_an_ack_only() {
        use tollgate_control_core::ppp::wire::{self, code, ipcp_option, lcp_option, protocol};
        let mut c = Client::new(b"u", b"s", &mut Sequence::new(1)).with_dns(false);
        let mut sent = Vec::new();
        let mut drain = |c: &mut Client| {
            let v: Vec<(u16, u8, u8)> = std::iter::from_fn(|| c.poll_transmit())
                .map(|t| (t.protocol, t.packet[0], t.packet[1]))
                .collect();
            sent.extend(v.clone());
            v
        };
        c.start();
        let mut o = Vec::new();
        wire::put_option(&mut o, lcp_option::AUTH, &protocol::PAP.to_be_bytes());
        c.handle_input(protocol::LCP, &wire::build(code::CONFIGURE_REQUEST, 7, &o));
        let lcp_req = drain(&mut c);
        assert_eq!(lcp_req[0], (protocol::LCP, code::CONFIGURE_REQUEST, 1));
        c.handle_input(protocol::LCP, &wire::build(code::CONFIGURE_ACK, 1, &[]));
        c.handle_input(protocol::PAP, &[2, 1, 0, 5, 0]);
        assert_eq!(
            drain(&mut c).last(),
            Some(&(protocol::IPCP, code::CONFIGURE_REQUEST, 1))
        );
        let mut a = Vec::new();
        wire::put_option(&mut a, ipcp_option::IP_ADDRESS, &[10, 10, 0, 1]);
        c.handle_input(protocol::IPCP, &wire::build(code::CONFIGURE_REQUEST, 9, &a));
        assert_eq!(
            drain(&mut c),
            vec![(protocol::IPCP, code::CONFIGURE_ACK, 9)],
            "an Ack, and ours stays outstanding"
        );
        let mut nak = Vec::new();
        wire::put_option(&mut nak, ipcp_option::IP_ADDRESS, &[10, 10, 1, 0]);
        c.handle_input(protocol::IPCP, &wire::build(code::CONFIGURE_NAK, 1, &nak));
        assert_eq!(
            drain(&mut c),
            vec![(protocol::IPCP, code::CONFIGURE_REQUEST, 2)]
        );
        c.handle_input(protocol::IPCP, &wire::build(code::CONFIGURE_ACK, 2, &nak));
        assert_eq!(c.address(), Some(Ipv4Addr::new(10, 10, 1, 0)));
    }

    #[test]
    fn padi_is_sent_again_then_the_subscriber_gives_up() {
        let o = PppoeOptions {
            user_prefix: "u".into(),
            secret: "s".into(),
            vlans: VlanPlan::default(),
            retry: Duration::from_millis(100),
            attempts: 2,
        };
        let mut s = Subscriber::new(3, &o);
        let mut out = Vec::new();
        s.start(Instant(1), &o, &mut out);
        assert_eq!(out.len(), 1);
        let h = ethernet::Frame::new_checked(&out[0][..])
            .unwrap()
            .header()
            .unwrap();
        assert_eq!((h.dst, h.src), (ethernet::BROADCAST, mac_of(3)));
        let padi = pwire::Packet::new_checked(&out[0][h.payload_at..]).unwrap();
        assert_eq!(padi.code(), code::PADI);
        // No PADO: one more PADI, then it gives up.
        out.clear();
        s.timeout(Instant(100_000_001), &o, &mut out);
        assert_eq!(
            (out.len(), s.retransmits, s.stage()),
            (1, 1, Stage::Discovery)
        );
        s.timeout(Instant(200_000_002), &o, &mut out);
        assert_eq!((s.stage(), s.failure), (Stage::Failed, Some("no PADO")));
    }
}
