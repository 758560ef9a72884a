//! LCP's options (RFC 1661 section 6) as an access server negotiates them: we ask for our
//! MRU, the authentication protocol (we are the authenticator) and a Magic-Number; we
//! accept the peer's MRU (at least [`MIN_MRU`]), ACCM (meaningless on PPPoE and L2TP,
//! harmless) and Magic-Number, and reject everything else: the peer asking to
//! authenticate us, Quality-Protocol, and PFC/ACFC (the fast path reads a two-byte
//! protocol field; RFC 2516 forbids ACFC on PPPoE anyway).
//!
//! Loop detection (RFC 1661 6.4): a peer Magic-Number equal to ours is Nak'ed with another
//! value and ours is changed; the session counts these in a row and gives up with
//! `looped_back` past Max-Failure.

use super::AuthMethod;
use super::cp::{Judge, Negotiator, Verdict};
use super::wire::{self, lcp_option, protocol};
use crate::entropy::Entropy;

/// The smallest MRU accepted from a peer (IPv4 needs 68; pppd's floor is 128).
pub const MIN_MRU: u16 = 128;

/// The MRU a peer has when it does not say (RFC 1661 6.1).
pub const DEFAULT_MRU: u16 = 1500;

impl AuthMethod {
    /// The Authentication-Protocol option value.
    pub fn option_value(self) -> &'static [u8] {
        match self {
            AuthMethod::Pap => &[0xc0, 0x23],
            AuthMethod::Chap => &[0xc2, 0x23, wire::CHAP_MD5],
        }
    }

    /// The method an Authentication-Protocol option value names, if we do it.
    pub fn from_option(value: &[u8]) -> Option<AuthMethod> {
        match value {
            [0xc0, 0x23] => Some(AuthMethod::Pap),
            [0xc2, 0x23, wire::CHAP_MD5] => Some(AuthMethod::Chap),
            _ => None,
        }
    }

    /// The PPP protocol number of the method.
    pub fn protocol(self) -> u16 {
        match self {
            AuthMethod::Pap => protocol::PAP,
            AuthMethod::Chap => protocol::CHAP,
        }
    }
}

/// What the peer's acknowledged request said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerOptions {
    pub mru: Option<u16>,
    pub magic: u32,
}

/// LCP's negotiator.
#[derive(Debug)]
pub(crate) struct Lcp {
    /// The MRU we ask for (`None` after the peer rejected it).
    pub mru: Option<u16>,
    configured_mru: u16,
    /// The authentication methods, in preference order.
    methods: Vec<AuthMethod>,
    /// The index in `methods` of the one we ask for.
    method: Option<usize>,
    /// Our Magic-Number (0: none, after the peer rejected it).
    pub magic: u32,
    /// The peer's acknowledged options.
    pub peer: PeerOptions,
    candidate: PeerOptions,
    /// Magic-Number collisions in a row (loop suspicion).
    pub collisions: u32,
    /// The peer refused every authentication method we offer.
    pub auth_refused: bool,
}

fn nonzero_magic(rng: &mut dyn Entropy, not: u32) -> u32 {
    loop {
        let m = rng.next_u32();
        if m != 0 && m != not {
            return m;
        }
    }
}

impl Lcp {
    pub(crate) fn new(mru: u16, methods: Vec<AuthMethod>, rng: &mut dyn Entropy) -> Lcp {
        let method = (!methods.is_empty()).then_some(0);
        Lcp {
            mru: Some(mru),
            configured_mru: mru,
            methods,
            method,
            magic: nonzero_magic(rng, 0),
            peer: PeerOptions::default(),
            candidate: PeerOptions::default(),
            collisions: 0,
            auth_refused: false,
        }
    }

    /// The authentication method in our request (the negotiated one once Opened).
    pub(crate) fn auth(&self) -> Option<AuthMethod> {
        self.method.map(|i| self.methods[i])
    }

    /// The Magic-Number of the peer's request last judged.
    pub(crate) fn peer_candidate_magic(&self) -> u32 {
        self.candidate.magic
    }

    /// Whether the configuration asks for authentication at all.
    pub(crate) fn requires_auth(&self) -> bool {
        !self.methods.is_empty()
    }

    /// Adopts a request the LAC sent on our behalf (proxy LCP): returns false if we could
    /// not have sent it ourselves.
    pub(crate) fn adopt_ours(&mut self, options: &[u8]) -> bool {
        let mut mru = None;
        let mut method = None;
        let mut magic = 0;
        for o in wire::options(options) {
            let Ok(o) = o else { return false };
            match o.kind {
                lcp_option::MRU => match o.u16() {
                    Some(v) if (MIN_MRU..=self.configured_mru).contains(&v) => mru = Some(v),
                    _ => return false,
                },
                lcp_option::AUTH => {
                    let Some(m) = AuthMethod::from_option(o.value) else {
                        return false;
                    };
                    match self.methods.iter().position(|x| *x == m) {
                        Some(i) => method = Some(i),
                        None => return false,
                    }
                }
                lcp_option::MAGIC => match o.u32() {
                    Some(v) if v != 0 => magic = v,
                    _ => return false,
                },
                lcp_option::ACCM if o.value.len() == 4 => {}
                _ => return false,
            }
        }
        if self.requires_auth() && method.is_none() {
            return false;
        }
        self.mru = mru;
        self.method = method;
        self.magic = magic;
        true
    }
}

impl Negotiator for Lcp {
    fn request(&mut self) -> Vec<u8> {
        let mut o = Vec::with_capacity(15);
        if let Some(m) = self.mru {
            wire::put_option(&mut o, lcp_option::MRU, &m.to_be_bytes());
        }
        if let Some(a) = self.auth() {
            wire::put_option(&mut o, lcp_option::AUTH, a.option_value());
        }
        if self.magic != 0 {
            wire::put_option(&mut o, lcp_option::MAGIC, &self.magic.to_be_bytes());
        }
        o
    }

    fn check(&mut self, options: &[u8], reject_naks: bool, rng: &mut dyn Entropy) -> Verdict {
        let mut j = Judge::default();
        // Our own Magic-Number: probably our own request looped back. Only the magic is
        // answered (RFC 1661 6.4), so that a loop is recognised as one rather than
        // as a peer refusing our options.
        let looped = wire::options(options).filter_map(Result::ok).find(|o| {
            o.kind == lcp_option::MAGIC && self.magic != 0 && o.u32() == Some(self.magic)
        });
        if let Some(o) = looped {
            self.collisions += 1;
            self.magic = nonzero_magic(rng, self.magic);
            j.nak(o, &nonzero_magic(rng, self.magic).to_be_bytes());
            self.candidate = PeerOptions::default();
            return j.verdict(reject_naks);
        }
        self.collisions = 0;
        let mut cand = PeerOptions::default();
        for o in wire::options(options).filter_map(Result::ok) {
            match o.kind {
                lcp_option::MRU => match o.u16() {
                    Some(v) if v >= MIN_MRU => cand.mru = Some(v),
                    Some(_) => j.nak(o, &MIN_MRU.to_be_bytes()),
                    None => j.reject(o),
                },
                lcp_option::ACCM if o.value.len() == 4 => {}
                lcp_option::MAGIC => match o.u32() {
                    None => j.reject(o),
                    Some(0) => j.nak(o, &nonzero_magic(rng, self.magic).to_be_bytes()),
                    Some(v) => cand.magic = v,
                },
                _ => j.reject(o),
            }
        }
        self.candidate = cand;
        j.verdict(reject_naks)
    }

    fn commit_peer(&mut self) {
        self.peer = self.candidate;
    }

    fn nak_received(&mut self, options: &[u8], rng: &mut dyn Entropy) {
        for o in wire::options(options).filter_map(Result::ok) {
            match o.kind {
                lcp_option::MRU => {
                    if let Some(v) = o.u16()
                        && (MIN_MRU..=self.configured_mru).contains(&v)
                    {
                        self.mru = Some(v);
                    }
                }
                lcp_option::AUTH if self.method.is_some() => {
                    let suggested = AuthMethod::from_option(o.value)
                        .and_then(|m| self.methods.iter().position(|x| *x == m));
                    match suggested {
                        Some(i) => self.method = Some(i),
                        None => {
                            let next = self.method.map_or(0, |i| i + 1);
                            if next < self.methods.len() {
                                self.method = Some(next);
                            } else {
                                self.auth_refused = true;
                            }
                        }
                    }
                }
                lcp_option::MAGIC if self.magic != 0 => {
                    self.magic = nonzero_magic(rng, self.magic);
                }
                _ => {}
            }
        }
    }

    fn reject_received(&mut self, options: &[u8]) {
        for o in wire::options(options).filter_map(Result::ok) {
            match o.kind {
                lcp_option::MRU => self.mru = None,
                lcp_option::AUTH => self.auth_refused = true,
                lcp_option::MAGIC => self.magic = 0,
                _ => {}
            }
        }
    }

    fn reset(&mut self, rng: &mut dyn Entropy) {
        self.mru = Some(self.configured_mru);
        self.method = (!self.methods.is_empty()).then_some(0);
        if self.magic == 0 {
            self.magic = nonzero_magic(rng, 0);
        }
        self.auth_refused = false;
    }
}
