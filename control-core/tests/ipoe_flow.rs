//! One IPoE subscriber, both families, through the three engines glued the way the shell
//! will glue them (docs/ipoe.md): one session per line + MAC, created by whichever family
//! logs in first and joined by the other; the ND router advertises the session's /64;
//! the session ends when its last family ends, or at once for all families when the
//! gateway ends it (DISC, CoA). A fake clock and a local "AAA" that grants from counters.

use std::collections::HashMap;

use core::net::{Ipv4Addr, Ipv6Addr};
use core::time::Duration;

use tollgate_control_core::Instant;
use tollgate_control_core::dhcp::{self, wire as w4};
use tollgate_control_core::dhcpv6::{self, wire as w6};
use tollgate_control_core::entropy::Sequence;
use tollgate_control_core::inet::ipv6::{self, Prefix};
use tollgate_control_core::ipoe::Subscriber;
use tollgate_control_core::nd::{self, wire as wnd};
use tollgate_control_core::pppoe::Line;

const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const GW4: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const T0: Instant = Instant(1_000_000_000);

/// A session as the shell keeps it: both families.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Session {
    id: u32,
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
    delegated: Option<Prefix>,
    slaac: Option<Prefix>,
}

/// The shell in miniature.
struct Shell {
    v4: dhcp::Server,
    v6: dhcpv6::Server,
    nd: nd::Router,
    rng: Sequence,
    sessions: HashMap<Subscriber, Session>,
    next: u32,
    /// Accounting: (session id, "start"/"stop", cause).
    records: Vec<(u32, &'static str, String)>,
}

impl Shell {
    fn new() -> Shell {
        Shell {
            v4: dhcp::Server::new(dhcp::ServerConfig::new(GW4), T0),
            v6: dhcpv6::Server::new(dhcpv6::ServerConfig::new(GW_MAC), T0),
            nd: nd::Router::new(nd::RouterConfig {
                other: true,
                ..nd::RouterConfig::new(GW_MAC)
            }),
            rng: Sequence::new(1),
            sessions: HashMap::new(),
            next: 0,
            records: Vec::new(),
        }
    }

    /// The subscriber's session, created (accounting Start) if it has none: whichever
    /// family comes first. Its /64 for SLAAC is fixed at creation.
    fn session(&mut self, now: Instant, sub: Subscriber) -> Session {
        if let Some(s) = self.sessions.get(&sub) {
            return s.clone();
        }
        self.next += 1;
        let n = self.next as u16;
        let s = Session {
            id: self.next,
            slaac: Prefix::new(Ipv6Addr::new(0x2001, 0xdb8, 0, n, 0, 0, 0, 0), 64),
            ..Session::default()
        };
        self.records.push((s.id, "start", String::new()));
        self.sessions.insert(sub, s.clone());
        let advert = nd::Advert {
            prefix: s.slaac,
            rdnss: Vec::new(),
        };
        self.nd
            .add_peer(now, nd::Peer::Ipoe(sub), advert, &mut self.rng);
        s
    }

    /// Ends the session if no family is left.
    fn maybe_end(&mut self, sub: Subscriber, cause: &str) {
        if let Some(s) = self.sessions.get(&sub)
            && s.v4.is_none()
            && s.v6.is_none()
            && s.delegated.is_none()
        {
            let id = s.id;
            self.sessions.remove(&sub);
            self.nd.remove_peer(nd::Peer::Ipoe(sub));
            self.records.push((id, "stop", cause.to_string()));
        }
    }

    /// The gateway ends the session (DISC, CoA): every family at once. The session goes
    /// first, so the engines' `SessionEnded(Closed)` events find none and add no Stop.
    fn disconnect(&mut self, sub: Subscriber, cause: &str) {
        if let Some(s) = self.sessions.remove(&sub) {
            self.nd.remove_peer(nd::Peer::Ipoe(sub));
            self.records.push((s.id, "stop", cause.to_string()));
        }
        self.v4.end_session(&sub, cause);
        self.v6.end_session(&sub, cause);
        self.drive(T0);
    }

    /// Runs the engines' events.
    fn drive(&mut self, now: Instant) {
        while let Some(e) = self.v4.poll_event() {
            match e {
                dhcp::Event::Login(l) => {
                    let s = self.session(now, l.subscriber);
                    let a = Ipv4Addr::new(100, 64, 1, s.id as u8);
                    self.v4
                        .accept(
                            now,
                            l.id,
                            dhcp::Grant::new(a, Ipv4Addr::new(255, 255, 0, 0)),
                        )
                        .unwrap();
                }
                dhcp::Event::SessionStarted(lease) | dhcp::Event::LeaseRenewed(lease) => {
                    if let Some(s) = self.sessions.get_mut(&lease.subscriber) {
                        s.v4 = Some(lease.address());
                    }
                }
                dhcp::Event::SessionEnded { lease, cause } => {
                    if let Some(s) = self.sessions.get_mut(&lease.subscriber) {
                        s.v4 = None;
                    }
                    self.maybe_end(lease.subscriber, cause.name());
                }
                dhcp::Event::LoginCancelled { .. } => {}
            }
        }
        while let Some(e) = self.v6.poll_event() {
            match e {
                dhcpv6::Event::Login(l) => {
                    let s = self.session(now, l.subscriber);
                    let n = s.id as u16;
                    let g = dhcpv6::Grant::new(
                        Some(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, n)),
                        Prefix::new(Ipv6Addr::new(0x2001, 0xdb8, 0x100 + n, 0, 0, 0, 0, 0), 56),
                    );
                    self.v6.accept(now, l.id, g).unwrap();
                }
                dhcpv6::Event::SessionStarted(l) | dhcpv6::Event::LeaseRenewed(l) => {
                    if let Some(s) = self.sessions.get_mut(&l.subscriber) {
                        s.v6 = l.grant.address;
                        s.delegated = l.grant.prefix;
                    }
                }
                dhcpv6::Event::SessionEnded { lease, cause } => {
                    if let Some(s) = self.sessions.get_mut(&lease.subscriber) {
                        s.v6 = None;
                        s.delegated = None;
                    }
                    self.maybe_end(lease.subscriber, cause.name());
                }
                dhcpv6::Event::LoginCancelled { .. } => {}
            }
        }
        while let Some(nd::Event::Solicited { peer, .. }) = self.nd.poll_event() {
            // An IPv6-first host doing SLAAC: its RS logs it in.
            if let nd::Peer::Ipoe(sub) = peer {
                self.session(now, sub);
            }
        }
    }
}

fn sub(n: u8) -> Subscriber {
    Subscriber::new(
        Line {
            port: 0,
            svlan: Some(100),
            cvlan: Some(u16::from(n)),
        },
        [2, 0, 0, 0, 0, n],
    )
}

fn dhcp4(
    shell: &mut Shell,
    now: Instant,
    s: Subscriber,
    kind: u8,
    f: impl FnOnce(&mut w4::MessageBuilder),
) {
    let mut m = w4::MessageBuilder::new(w4::op::BOOTREQUEST, 1, s.mac);
    m.option(w4::option::MESSAGE_TYPE, &[kind]);
    f(&mut m);
    let m = m.finish();
    shell.v4.handle_input(
        now,
        &dhcp::Received {
            line: s.line,
            src_mac: s.mac,
            src_ip: Ipv4Addr::UNSPECIFIED,
            dst_ip: Ipv4Addr::BROADCAST,
            message: &m,
        },
    );
    shell.drive(now);
}

fn v4_login(shell: &mut Shell, now: Instant, s: Subscriber) -> Ipv4Addr {
    dhcp4(shell, now, s, w4::message_type::DISCOVER, |_| {});
    let offer = std::iter::from_fn(|| shell.v4.poll_transmit())
        .last()
        .unwrap();
    let a = w4::Packet::new_checked(&offer.message[..])
        .unwrap()
        .yiaddr();
    dhcp4(shell, now, s, w4::message_type::REQUEST, |m| {
        m.option_ip(w4::option::SERVER_ID, GW4)
            .option_ip(w4::option::REQUESTED_IP, a);
    });
    a
}

fn v6_login(shell: &mut Shell, now: Instant, s: Subscriber) {
    let mut o = Vec::new();
    w6::put_option(&mut o, w6::option::CLIENT_ID, &w6::duid_ll(s.mac));
    w6::put_option(&mut o, w6::option::RAPID_COMMIT, &[]);
    w6::put_option(&mut o, w6::option::IA_NA, &w6::ia(1, 0, 0, &[]));
    w6::put_option(&mut o, w6::option::IA_PD, &w6::ia(2, 0, 0, &[]));
    let m = w6::message(w6::message_type::SOLICIT, 5, &o);
    shell.v6.handle_input(
        now,
        &dhcpv6::Received {
            line: s.line,
            src_mac: s.mac,
            src_ip: ipv6::link_local(s.mac),
            dst_ip: ipv6::ALL_DHCP_AGENTS,
            message: &m,
        },
    );
    shell.drive(now);
}

/// The prefixes in the RAs sent to `s` since the last call.
fn ra_prefixes(shell: &mut Shell, s: Subscriber) -> Vec<(Prefix, u32)> {
    let mut out = Vec::new();
    while let Some(t) = shell.nd.poll_transmit() {
        assert_eq!(
            t.to,
            nd::Link::Ethernet {
                line: s.line,
                mac: s.mac
            },
            "unicast to the subscriber only"
        );
        let ip = ipv6::Packet::new_checked(&t.packet[..]).unwrap();
        let body = ip.payload().to_vec();
        for o in wnd::options(&body[16..]).flatten() {
            if let wnd::NdOption::PrefixInfo { prefix, valid, .. } = o {
                out.push((prefix, valid));
            }
        }
    }
    out
}

#[test]
fn ipv4_first_then_ipv6_joins_the_same_session() {
    let mut sh = Shell::new();
    let s = sub(1);
    let a = v4_login(&mut sh, T0, s);
    assert_eq!(sh.records, [(1, "start", String::new())]);
    assert_eq!(
        ra_prefixes(&mut sh, s),
        [("2001:db8:0:1::/64".parse().unwrap(), 86_400)]
    );
    v6_login(&mut sh, T0, s);
    let session = sh.sessions[&s].clone();
    assert_eq!(session.id, 1, "the same session");
    assert_eq!(session.v4, Some(a));
    assert_eq!(session.v6, Some("2001:db8:ffff::1".parse().unwrap()));
    assert_eq!(
        session.delegated,
        Some("2001:db8:101::/56".parse().unwrap())
    );
    assert_eq!(sh.records.len(), 1, "one Start for both families");
    assert_eq!(sh.v4.lease(&s).map(|l| l.address()), Some(a));
    assert!(sh.v6.lease(&s).is_some());
}

#[test]
fn an_ipv6_first_slaac_host_creates_the_session_and_dhcpv4_joins() {
    let mut sh = Shell::new();
    let s = sub(2);
    let rs = {
        let src = ipv6::link_local(s.mac);
        let m = wnd::Builder::router_solicit()
            .source_link_layer(s.mac)
            .finish(src, ipv6::ALL_ROUTERS);
        ipv6::packet(src, ipv6::ALL_ROUTERS, 58, 255, &m)
    };
    sh.nd.handle_packet(T0, nd::Peer::Ipoe(s), &rs);
    sh.drive(T0);
    assert_eq!(sh.sessions[&s].id, 1);
    // The generic answer to the RS, then the session's RA with its /64.
    let p = ra_prefixes(&mut sh, s);
    assert_eq!(p, [("2001:db8:0:1::/64".parse().unwrap(), 86_400)]);
    v4_login(&mut sh, T0, s);
    assert_eq!(sh.sessions[&s].id, 1);
    assert!(sh.sessions[&s].v4.is_some());
    assert_eq!(sh.records.len(), 1);
}

#[test]
fn the_session_ends_with_its_last_family_or_at_once_when_the_gateway_ends_it() {
    let mut sh = Shell::new();
    let s = sub(3);
    let a = v4_login(&mut sh, T0, s);
    v6_login(&mut sh, T0, s);
    ra_prefixes(&mut sh, s);
    // DHCPv4 RELEASE: IPv4 goes, the session stays for IPv6.
    dhcp4(&mut sh, T0, s, w4::message_type::RELEASE, |m| {
        m.ciaddr(a).option_ip(w4::option::SERVER_ID, GW4);
    });
    assert_eq!(sh.sessions[&s].v4, None);
    assert!(sh.sessions[&s].v6.is_some());
    assert_eq!(sh.records.len(), 1);
    // The DHCPv6 binding expires: the last family, the session ends.
    sh.v6.handle_timeout(T0 + Duration::from_secs(7200));
    sh.drive(T0 + Duration::from_secs(7200));
    assert!(!sh.sessions.contains_key(&s));
    assert_eq!(
        sh.records.last(),
        Some(&(1, "stop", "lease_expired".to_string()))
    );
    let last = ra_prefixes(&mut sh, s);
    assert_eq!(
        last,
        [("2001:db8:0:1::/64".parse().unwrap(), 0)],
        "the final RA withdraws the /64"
    );

    // Another subscriber, ended by a CoA Disconnect: all families at once, one Stop.
    let s = sub(4);
    let a = v4_login(&mut sh, T0, s);
    v6_login(&mut sh, T0, s);
    sh.disconnect(s, "coa");
    assert!(!sh.sessions.contains_key(&s));
    let stops: Vec<_> = sh
        .records
        .iter()
        .filter(|r| r.0 == 2 && r.1 == "stop")
        .collect();
    assert_eq!(stops, [&(2, "stop", "coa".to_string())]);
    // Its DHCPv4 renewal is refused: the client starts over and logs in anew.
    while sh.v4.poll_transmit().is_some() {}
    dhcp4(
        &mut sh,
        T0 + Duration::from_secs(1),
        s,
        w4::message_type::REQUEST,
        |m| {
            m.ciaddr(a);
        },
    );
    let t = sh.v4.poll_transmit().unwrap();
    let p = w4::Packet::new_checked(&t.message[..]).unwrap();
    let r = w4::Request::parse(&p).unwrap();
    assert_eq!(r.message_type, Some(w4::message_type::NAK));
}
