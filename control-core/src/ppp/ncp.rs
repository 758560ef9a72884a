//! The network control protocols: IPCP (RFC 1332, DNS of RFC 1877) and IPv6CP
//! (RFC 5072). Both start after authentication, with what the caller granted.
//!
//! IPCP: we ask for our own IP-Address (the gateway's); the peer's IP-Address must be the
//! granted one (anything else, 0.0.0.0 included, is Nak'ed with it, and a request without
//! the option gets it as a hint); Primary/Secondary-DNS are Nak'ed to the granted servers
//! or rejected when none was granted; compression, the deprecated IP-Addresses and NBNS
//! are rejected.
//!
//! IPv6CP: we ask for our Interface-Identifier; the peer's must be non-zero and differ
//! from ours (RFC 5072 4.1), and equal the granted one when the caller chose one.

use core::net::Ipv4Addr;

use super::cp::{Judge, Negotiator, Verdict};
use super::wire::{self, ipcp_option, ipv6cp_option};
use crate::entropy::Entropy;

/// IPCP's negotiator.
#[derive(Debug)]
pub(crate) struct Ipcp {
    local: Ipv4Addr,
    ask_local: bool,
    /// The address the peer must take.
    pub peer: Ipv4Addr,
    dns: [Option<Ipv4Addr>; 2],
    /// The address the peer acknowledged for itself.
    pub acked_peer: Option<Ipv4Addr>,
    candidate: Option<Ipv4Addr>,
}

impl Ipcp {
    pub(crate) fn new(local: Ipv4Addr, peer: Ipv4Addr, dns: [Option<Ipv4Addr>; 2]) -> Ipcp {
        Ipcp {
            local,
            ask_local: true,
            peer,
            dns,
            acked_peer: None,
            candidate: None,
        }
    }

    /// Our address.
    pub(crate) fn local(&self) -> Ipv4Addr {
        self.local
    }

    /// The DNS servers granted.
    pub(crate) fn dns(&self) -> [Option<Ipv4Addr>; 2] {
        self.dns
    }
}

fn addr(v: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from)
}

impl Negotiator for Ipcp {
    fn request(&mut self) -> Vec<u8> {
        let mut o = Vec::with_capacity(6);
        if self.ask_local {
            wire::put_option(&mut o, ipcp_option::IP_ADDRESS, &self.local.octets());
        }
        o
    }

    fn check(&mut self, options: &[u8], reject_naks: bool, _rng: &mut dyn Entropy) -> Verdict {
        let mut j = Judge::default();
        let mut saw_address = false;
        self.candidate = None;
        for o in wire::options(options).filter_map(Result::ok) {
            match o.kind {
                ipcp_option::IP_ADDRESS => match addr(o.value) {
                    Some(a) if a == self.peer => {
                        saw_address = true;
                        self.candidate = Some(a);
                    }
                    Some(_) => {
                        saw_address = true;
                        j.nak(o, &self.peer.octets());
                    }
                    None => j.reject(o),
                },
                ipcp_option::PRIMARY_DNS | ipcp_option::SECONDARY_DNS => {
                    let slot = usize::from(o.kind == ipcp_option::SECONDARY_DNS);
                    match (addr(o.value), self.dns[slot]) {
                        (Some(a), Some(d)) if a == d => {}
                        (Some(_), Some(d)) => j.nak(o, &d.octets()),
                        _ => j.reject(o),
                    }
                }
                _ => j.reject(o),
            }
        }
        if !saw_address {
            j.hint(ipcp_option::IP_ADDRESS, &self.peer.octets());
        }
        j.verdict(reject_naks)
    }

    fn commit_peer(&mut self) {
        self.acked_peer = self.candidate;
    }

    fn nak_received(&mut self, _options: &[u8], _rng: &mut dyn Entropy) {
        // The gateway's address is not negotiable: the next request asks for it again.
    }

    fn reject_received(&mut self, options: &[u8]) {
        if wire::options(options)
            .filter_map(Result::ok)
            .any(|o| o.kind == ipcp_option::IP_ADDRESS)
        {
            self.ask_local = false;
        }
    }

    fn reset(&mut self, _rng: &mut dyn Entropy) {
        self.ask_local = true;
    }
}

/// An IPv6 Interface-Identifier (the low 64 bits of the link-local address).
pub type InterfaceId = [u8; 8];

fn random_iid(rng: &mut dyn Entropy, not: InterfaceId) -> InterfaceId {
    loop {
        let mut b = [0u8; 8];
        rng.fill(&mut b);
        if b != [0; 8] && b != not {
            return b;
        }
    }
}

/// IPv6CP's negotiator.
#[derive(Debug)]
pub(crate) struct Ipv6cp {
    /// Our Interface-Identifier.
    pub local: InterfaceId,
    ask_local: bool,
    granted: Option<InterfaceId>,
    /// The peer's acknowledged Interface-Identifier.
    pub peer: Option<InterfaceId>,
    candidate: Option<InterfaceId>,
    /// Ours is fixed: a peer's Nak of it is not followed (RFC 5072 lets a peer Nak only
    /// an identifier equal to its own, which our Nak of its request resolves).
    fixed: bool,
}

impl Ipv6cp {
    /// `granted`: the peer's Interface-Identifier when the caller assigns it; `fixed`:
    /// ours when the caller fixes it (the gateway's link-local on every link, so that
    /// its RAs' source is fe80::`fixed`), else a random one.
    pub(crate) fn new(
        granted: Option<InterfaceId>,
        fixed: Option<InterfaceId>,
        rng: &mut dyn Entropy,
    ) -> Ipv6cp {
        let local = fixed
            .filter(|f| *f != [0; 8] && Some(*f) != granted)
            .unwrap_or_else(|| random_iid(rng, granted.unwrap_or([0; 8])));
        Ipv6cp {
            local,
            ask_local: true,
            granted,
            peer: None,
            candidate: None,
            fixed: fixed.is_some(),
        }
    }
}

impl Negotiator for Ipv6cp {
    fn request(&mut self) -> Vec<u8> {
        let mut o = Vec::with_capacity(10);
        if self.ask_local {
            wire::put_option(&mut o, ipv6cp_option::INTERFACE_ID, &self.local);
        }
        o
    }

    fn check(&mut self, options: &[u8], reject_naks: bool, rng: &mut dyn Entropy) -> Verdict {
        let mut j = Judge::default();
        self.candidate = None;
        for o in wire::options(options).filter_map(Result::ok) {
            match o.kind {
                ipv6cp_option::INTERFACE_ID => {
                    let Ok(v) = InterfaceId::try_from(o.value) else {
                        j.reject(o);
                        continue;
                    };
                    let want = match self.granted {
                        Some(g) if v != g => Some(g),
                        Some(_) => None,
                        None if v == [0; 8] || v == self.local => Some(random_iid(rng, self.local)),
                        None => None,
                    };
                    match want {
                        Some(w) => j.nak(o, &w),
                        None => self.candidate = Some(v),
                    }
                }
                _ => j.reject(o),
            }
        }
        j.verdict(reject_naks)
    }

    fn commit_peer(&mut self) {
        self.peer = self.candidate;
    }

    fn nak_received(&mut self, options: &[u8], _rng: &mut dyn Entropy) {
        for o in wire::options(options).filter_map(Result::ok) {
            if o.kind == ipv6cp_option::INTERFACE_ID
                && !self.fixed
                && let Ok(v) = InterfaceId::try_from(o.value)
                && v != [0; 8]
                && Some(v) != self.granted
            {
                self.local = v;
            }
        }
    }

    fn reject_received(&mut self, options: &[u8]) {
        if wire::options(options)
            .filter_map(Result::ok)
            .any(|o| o.kind == ipv6cp_option::INTERFACE_ID)
        {
            self.ask_local = false;
        }
    }

    fn reset(&mut self, _rng: &mut dyn Entropy) {
        self.ask_local = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::Sequence;

    const OURS: InterfaceId = [0x00, 0xac, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x01];

    fn request(iid: InterfaceId) -> Vec<u8> {
        let mut o = vec![ipv6cp_option::INTERFACE_ID, 10];
        o.extend_from_slice(&iid);
        o
    }

    /// RFC 5072 4.1 with a fixed identifier of ours: the peer's is acked unless zero or
    /// ours (Nak'ed with a random one, neither zero nor ours), or Nak'ed to the granted
    /// one; a peer's Nak of ours is not followed.
    #[test]
    fn a_fixed_identifier_of_ours_and_the_peer_s() {
        let mut rng = Sequence::new(3);
        let mut n = Ipv6cp::new(None, Some(OURS), &mut rng);
        assert_eq!(n.request(), request(OURS));
        let peer = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(n.check(&request(peer), false, &mut rng), Verdict::Ack);
        n.commit_peer();
        assert_eq!(n.peer, Some(peer));
        for bad in [[0; 8], OURS] {
            let Verdict::Nak(o) = n.check(&request(bad), false, &mut rng) else {
                panic!("{bad:x?} not Nak'ed");
            };
            assert_eq!(&o[..2], &[ipv6cp_option::INTERFACE_ID, 10]);
            let suggested: InterfaceId = o[2..].try_into().unwrap();
            assert!(suggested != [0; 8] && suggested != OURS, "{suggested:x?}");
        }
        n.nak_received(&request(peer), &mut rng);
        assert_eq!(n.local, OURS, "a fixed identifier stays");
        // Granted (Framed-Interface-Id): anything else is Nak'ed to it.
        let granted = [9; 8];
        let mut g = Ipv6cp::new(Some(granted), Some(OURS), &mut rng);
        assert_eq!(
            g.check(&request(peer), false, &mut rng),
            Verdict::Nak(request(granted))
        );
        assert_eq!(g.check(&request(granted), false, &mut rng), Verdict::Ack);
        // Without a fixed one: random, and a Nak of it is followed.
        let mut r = Ipv6cp::new(None, None, &mut rng);
        assert!(r.local != [0; 8]);
        r.nak_received(&request(peer), &mut rng);
        assert_eq!(r.local, peer);
    }
}
