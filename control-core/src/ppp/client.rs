//! A minimal PPP client (the subscriber's side), sans-I/O: what `tollgate pktgen` needs
//! to be many PPPoE subscribers, and what the engine's tests and benches talk to.
//!
//! It is deliberately simple, not an RFC 1661 implementation: it acknowledges every
//! Configure-Request it gets (LCP, IPCP, and IPv6CP when enabled), sends its own requests
//! (LCP: MRU and Magic-Number; IPCP: IP-Address 0.0.0.0 and, if asked, the DNS options)
//! and adopts the values of a Nak, drops rejected options, answers PAP or CHAP-MD5 with
//! its credentials, echoes Echo-Requests and acknowledges Terminate-Requests. Interop
//! tests use an independent client (scapy) instead.

use core::net::Ipv4Addr;

use super::wire::{
    self, Packet, chap, code, ipcp_option, ipv6cp_option, lcp_option, pap, protocol,
};
use super::{AuthMethod, Transmit};
use crate::entropy::Entropy;

/// Where the client stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientPhase {
    /// LCP negotiating.
    Link,
    /// Credentials sent, waiting for the verdict.
    Authenticating,
    /// IPCP negotiating.
    Network,
    /// IPCP open: the address is known.
    Up,
    /// Authentication failed.
    Rejected,
    /// Terminated by either side.
    Terminated,
}

/// The subscriber's side of a PPP link.
pub struct Client {
    user: Vec<u8>,
    secret: Vec<u8>,
    mru: Option<u16>,
    magic: u32,
    want_dns: bool,
    ipv4: bool,
    ipv6: bool,
    phase: ClientPhase,
    auth: Option<AuthMethod>,
    lcp_ours_acked: bool,
    lcp_theirs_acked: bool,
    ipcp_ours_acked: bool,
    ipcp_theirs_acked: bool,
    lcp_id: u8,
    lcp_req: Vec<u8>,
    ipcp_id: u8,
    ipcp_req: Vec<u8>,
    address: Ipv4Addr,
    dns: [Ipv4Addr; 2],
    ipv6_iid: [u8; 8],
    ipv6_up: (bool, bool),
    protocol_rejects: Vec<u16>,
    out: Vec<Transmit>,
}

impl core::fmt::Debug for Client {
    /// Never prints the secret.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("phase", &self.phase)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client that authenticates as `user` with `secret` (PAP password or CHAP secret).
    pub fn new(user: &[u8], secret: &[u8], rng: &mut dyn Entropy) -> Client {
        let mut iid = [0u8; 8];
        rng.fill(&mut iid);
        iid[0] |= 0x02;
        Client {
            user: user.to_vec(),
            secret: secret.to_vec(),
            mru: Some(1492),
            magic: rng.next_u32() | 1,
            want_dns: true,
            ipv4: true,
            ipv6: false,
            phase: ClientPhase::Link,
            auth: None,
            lcp_ours_acked: false,
            lcp_theirs_acked: false,
            ipcp_ours_acked: false,
            ipcp_theirs_acked: false,
            lcp_id: 0,
            lcp_req: Vec::new(),
            ipcp_id: 0,
            ipcp_req: Vec::new(),
            address: Ipv4Addr::UNSPECIFIED,
            dns: [Ipv4Addr::UNSPECIFIED; 2],
            ipv6_iid: iid,
            ipv6_up: (false, false),
            protocol_rejects: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Whether to ask for DNS servers (default yes).
    pub fn with_dns(mut self, yes: bool) -> Client {
        self.want_dns = yes;
        self
    }

    /// Whether to negotiate IPCP (default yes). Without, the client is IPv6-only: it
    /// sends no IPCP request and answers the server's IPCP with LCP Protocol-Reject (as
    /// pppd's `noip` does); with IPv6CP up it is [`ClientPhase::Up`].
    pub fn with_ipv4(mut self, yes: bool) -> Client {
        self.ipv4 = yes;
        self
    }

    /// Whether to negotiate IPv6CP (default no).
    pub fn with_ipv6(mut self, yes: bool) -> Client {
        self.ipv6 = yes;
        self
    }

    /// The MRU to ask for (`None`: no MRU option).
    pub fn with_mru(mut self, mru: Option<u16>) -> Client {
        self.mru = mru;
        self
    }

    /// Sends the first LCP Configure-Request.
    pub fn start(&mut self) {
        self.send_lcp_request();
    }

    /// The phase.
    pub fn phase(&self) -> ClientPhase {
        self.phase
    }

    /// The address IPCP gave, once up.
    pub fn address(&self) -> Option<Ipv4Addr> {
        (self.phase == ClientPhase::Up && self.ipv4).then_some(self.address)
    }

    /// The DNS servers IPCP gave.
    pub fn dns(&self) -> [Ipv4Addr; 2] {
        self.dns
    }

    /// The authentication method the server asked for.
    pub fn auth_method(&self) -> Option<AuthMethod> {
        self.auth
    }

    /// Our Magic-Number.
    pub fn magic(&self) -> u32 {
        self.magic
    }

    /// Whether IPv6CP is open both ways.
    pub fn ipv6_up(&self) -> bool {
        self.ipv6_up == (true, true)
    }

    /// Protocols the server rejected with LCP Protocol-Reject.
    pub fn protocol_rejects(&self) -> &[u16] {
        &self.protocol_rejects
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        (!self.out.is_empty()).then(|| self.out.remove(0))
    }

    /// Resends the requests still unanswered (the caller's retransmission timer).
    pub fn retransmit(&mut self) {
        match self.phase {
            ClientPhase::Link if !self.lcp_ours_acked => self.send_lcp_request(),
            ClientPhase::Network if !self.ipcp_ours_acked => self.send_ipcp_request(),
            _ => {}
        }
    }

    /// Sends an LCP Terminate-Request.
    pub fn terminate(&mut self) {
        self.lcp_id = self.lcp_id.wrapping_add(1);
        self.push(
            protocol::LCP,
            wire::build(code::TERMINATE_REQUEST, self.lcp_id, b"bye"),
        );
        self.phase = ClientPhase::Terminated;
    }

    /// Sends an IPv6CP Configure-Request (after authentication, when enabled).
    fn send_ipv6cp_request(&mut self) {
        let mut o = Vec::new();
        wire::put_option(&mut o, ipv6cp_option::INTERFACE_ID, &self.ipv6_iid);
        self.push(
            protocol::IPV6CP,
            wire::build(code::CONFIGURE_REQUEST, 1, &o),
        );
    }

    fn push(&mut self, protocol: u16, packet: Vec<u8>) {
        self.out.push(Transmit { protocol, packet });
    }

    fn send_lcp_request(&mut self) {
        let mut o = Vec::new();
        if let Some(m) = self.mru {
            wire::put_option(&mut o, lcp_option::MRU, &m.to_be_bytes());
        }
        if self.magic != 0 {
            wire::put_option(&mut o, lcp_option::MAGIC, &self.magic.to_be_bytes());
        }
        self.lcp_id = self.lcp_id.wrapping_add(1);
        self.lcp_req = o;
        let p = wire::build(code::CONFIGURE_REQUEST, self.lcp_id, &self.lcp_req);
        self.push(protocol::LCP, p);
    }

    fn send_ipcp_request(&mut self) {
        let mut o = Vec::new();
        wire::put_option(&mut o, ipcp_option::IP_ADDRESS, &self.address.octets());
        if self.want_dns {
            wire::put_option(&mut o, ipcp_option::PRIMARY_DNS, &self.dns[0].octets());
            wire::put_option(&mut o, ipcp_option::SECONDARY_DNS, &self.dns[1].octets());
        }
        self.ipcp_id = self.ipcp_id.wrapping_add(1);
        self.ipcp_req = o;
        let p = wire::build(code::CONFIGURE_REQUEST, self.ipcp_id, &self.ipcp_req);
        self.push(protocol::IPCP, p);
    }

    /// A PPP frame from the server.
    pub fn handle_input(&mut self, proto: u16, payload: &[u8]) {
        match proto {
            protocol::LCP => self.lcp(payload),
            protocol::PAP => {
                if let Ok(p) = pap::PapPacket::new_checked(payload) {
                    match p.code() {
                        pap::ACK => self.authenticated(),
                        pap::NAK => self.phase = ClientPhase::Rejected,
                        _ => {}
                    }
                }
            }
            protocol::CHAP => {
                if let Ok(p) = chap::ChapPacket::new_checked(payload) {
                    match p.code() {
                        chap::CHALLENGE => {
                            let r = chap::md5_response(p.identifier(), &self.secret, p.value());
                            let pkt = chap::challenge_or_response(
                                chap::RESPONSE,
                                p.identifier(),
                                &r,
                                &self.user,
                            );
                            self.push(protocol::CHAP, pkt);
                            self.phase = ClientPhase::Authenticating;
                        }
                        chap::SUCCESS => self.authenticated(),
                        chap::FAILURE => self.phase = ClientPhase::Rejected,
                        _ => {}
                    }
                }
            }
            protocol::IPCP if !self.ipv4 => {
                let id = self.lcp_id.wrapping_add(100);
                let mut d = protocol::IPCP.to_be_bytes().to_vec();
                d.extend_from_slice(payload);
                self.push(protocol::LCP, wire::build(code::PROTOCOL_REJECT, id, &d));
            }
            protocol::IPCP => self.ipcp(payload),
            protocol::IPV6CP => self.ipv6cp(payload),
            _ => {}
        }
    }

    fn authenticated(&mut self) {
        if self.phase == ClientPhase::Authenticating || self.phase == ClientPhase::Link {
            self.phase = ClientPhase::Network;
            if self.ipv4 {
                self.send_ipcp_request();
            }
            if self.ipv6 {
                self.send_ipv6cp_request();
            }
        }
    }

    fn lcp_opened(&mut self) {
        if !(self.lcp_ours_acked && self.lcp_theirs_acked) || self.phase != ClientPhase::Link {
            return;
        }
        match self.auth {
            Some(AuthMethod::Pap) => {
                let p = pap::request(1, &self.user, &self.secret);
                self.push(protocol::PAP, p);
                self.phase = ClientPhase::Authenticating;
            }
            Some(AuthMethod::Chap) => {} // the challenge comes
            None => self.authenticated(),
        }
    }

    fn lcp(&mut self, payload: &[u8]) {
        let Ok(p) = Packet::new_checked(payload) else {
            return;
        };
        let id = p.identifier();
        let d = p.data();
        match p.code() {
            code::CONFIGURE_REQUEST => {
                for o in wire::options(d).filter_map(Result::ok) {
                    if o.kind == lcp_option::AUTH {
                        self.auth = AuthMethod::from_option(o.value);
                    }
                }
                self.push(protocol::LCP, wire::build(code::CONFIGURE_ACK, id, d));
                self.lcp_theirs_acked = true;
                self.lcp_opened();
            }
            code::CONFIGURE_ACK if id == self.lcp_id => {
                self.lcp_ours_acked = true;
                self.lcp_opened();
            }
            code::CONFIGURE_NAK if id == self.lcp_id => {
                for o in wire::options(d).filter_map(Result::ok) {
                    match o.kind {
                        lcp_option::MRU => self.mru = o.u16(),
                        lcp_option::MAGIC => self.magic = o.u32().unwrap_or(0),
                        _ => {}
                    }
                }
                self.send_lcp_request();
            }
            code::CONFIGURE_REJECT if id == self.lcp_id => {
                for o in wire::options(d).filter_map(Result::ok) {
                    match o.kind {
                        lcp_option::MRU => self.mru = None,
                        lcp_option::MAGIC => self.magic = 0,
                        _ => {}
                    }
                }
                self.send_lcp_request();
            }
            code::TERMINATE_REQUEST => {
                self.push(protocol::LCP, wire::build(code::TERMINATE_ACK, id, &[]));
                self.phase = ClientPhase::Terminated;
            }
            code::ECHO_REQUEST => {
                let mut r = self.magic.to_be_bytes().to_vec();
                r.extend_from_slice(d.get(4..).unwrap_or_default());
                self.push(protocol::LCP, wire::build(code::ECHO_REPLY, id, &r));
            }
            code::PROTOCOL_REJECT if d.len() >= 2 => {
                self.protocol_rejects.push(u16::from_be_bytes([d[0], d[1]]));
            }
            _ => {}
        }
    }

    fn ipcp(&mut self, payload: &[u8]) {
        let Ok(p) = Packet::new_checked(payload) else {
            return;
        };
        let id = p.identifier();
        let d = p.data();
        match p.code() {
            code::CONFIGURE_REQUEST => {
                self.push(protocol::IPCP, wire::build(code::CONFIGURE_ACK, id, d));
                self.ipcp_theirs_acked = true;
                // Ours stays outstanding (RFC 1661: Req-Sent + RCR is an Ack only); a
                // lost one is the caller's retransmission timer's. Sending a new one
                // here never converged against a server that restarts IPCP on each
                // request of ours once it is Opened, as RFC 1661 says it must.
            }
            code::CONFIGURE_ACK if id == self.ipcp_id => self.ipcp_ours_acked = true,
            code::CONFIGURE_NAK if id == self.ipcp_id => {
                for o in wire::options(d).filter_map(Result::ok) {
                    let Ok(a) = <[u8; 4]>::try_from(o.value) else {
                        continue;
                    };
                    match o.kind {
                        ipcp_option::IP_ADDRESS => self.address = a.into(),
                        ipcp_option::PRIMARY_DNS => self.dns[0] = a.into(),
                        ipcp_option::SECONDARY_DNS => self.dns[1] = a.into(),
                        _ => {}
                    }
                }
                self.send_ipcp_request();
            }
            code::CONFIGURE_REJECT if id == self.ipcp_id => {
                for o in wire::options(d).filter_map(Result::ok) {
                    if matches!(
                        o.kind,
                        ipcp_option::PRIMARY_DNS | ipcp_option::SECONDARY_DNS
                    ) {
                        self.want_dns = false;
                    }
                }
                self.send_ipcp_request();
            }
            _ => {}
        }
        if self.ipcp_ours_acked && self.ipcp_theirs_acked && self.phase == ClientPhase::Network {
            self.phase = ClientPhase::Up;
        }
    }

    fn ipv6cp(&mut self, payload: &[u8]) {
        let Ok(p) = Packet::new_checked(payload) else {
            return;
        };
        let d = p.data();
        match p.code() {
            code::CONFIGURE_REQUEST => {
                self.push(
                    protocol::IPV6CP,
                    wire::build(code::CONFIGURE_ACK, p.identifier(), d),
                );
                self.ipv6_up.1 = true;
            }
            code::CONFIGURE_ACK => self.ipv6_up.0 = true,
            code::CONFIGURE_NAK => {
                for o in wire::options(d).filter_map(Result::ok) {
                    if let Ok(v) = <[u8; 8]>::try_from(o.value) {
                        self.ipv6_iid = v;
                    }
                }
                self.send_ipv6cp_request();
            }
            _ => {}
        }
        if !self.ipv4 && self.ipv6_up == (true, true) && self.phase == ClientPhase::Network {
            self.phase = ClientPhase::Up;
        }
    }
}
