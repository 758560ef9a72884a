//! DHCPv6 through the core (V6-1): SOLICIT, REQUEST, RELEASE from a subscriber, built
//! with etherparse and the DHCPv6 wire helpers; the ADVERTISE and REPLY frames compared
//! byte for byte; the login, the session's commands (its /64, its delegated prefix) and
//! counters exact.

use std::time::Duration;

use super::*;
use crate::dhcpv6::wire::{
    self, duid_ll, ia, ia_addr_option, ia_prefix_option, message, message_type as mt, option,
    put_option,
};
use crate::gateway::dhcpv6::Dhcpv6Settings;

const SERVER_PORT: u16 = 547;
const CLIENT_PORT: u16 = 546;
const ALL_DHCP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
const DNS6: &str = "2001:db8:ff::53";

fn dhcp_settings() -> Ipv6Settings {
    let mut s = settings();
    s.dhcpv6 = Some(Dhcpv6Settings {
        delegated_pool: Some("2001:db8:200::/48".parse().unwrap()),
        delegated_length: 56,
        lease: Duration::from_secs(7200),
        rapid_commit: true,
        relay: None,
    });
    s
}

/// A client message of `ty` from SUB_MAC's DUID-LL: IA_NA (IAID 1), IA_PD (IAID 2),
/// ORO for DNS, then `extra` options.
fn client_message(ty: u8, xid: u32, extra: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    put_option(&mut o, option::CLIENT_ID, &duid_ll(SUB_MAC.0));
    put_option(&mut o, option::ELAPSED_TIME, &[0, 0]);
    put_option(&mut o, option::IA_NA, &ia(1, 0, 0, &[]));
    put_option(&mut o, option::IA_PD, &ia(2, 0, 0, &[]));
    put_option(&mut o, option::ORO, &option::DNS_SERVERS.to_be_bytes());
    o.extend_from_slice(extra);
    message(ty, xid, &o)
}

/// The frame carrying DHCPv6 `msg` from the subscriber to All_DHCP_Relay_Agents_and_Servers.
fn from_client(msg: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(SUB_MAC.0, [0x33, 0x33, 0, 1, 0, 2])
        .ipv6(sub_ll().octets(), ALL_DHCP.octets(), 1)
        .udp(CLIENT_PORT, SERVER_PORT)
        .write(&mut f, msg)
        .unwrap();
    f
}

/// The frame carrying the gateway's DHCPv6 `msg` to the subscriber.
fn to_client(msg: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(ACC_MAC.0, SUB_MAC.0)
        .ipv6(link_local(ACC_MAC).octets(), sub_ll().octets(), 255)
        .udp(SERVER_PORT, CLIENT_PORT)
        .write(&mut f, msg)
        .unwrap();
    f
}

/// The server's answer of `ty` to a client message `xid` with the grant: IA_NA
/// 2001:db8:100::1, IA_PD 2001:db8:200::/56 (lifetimes 3600/7200, T1 1800, T2 2880),
/// DNS; ADVERTISE adds Preference 255.
fn granted(ty: u8, xid: u32) -> Vec<u8> {
    let mut o = Vec::new();
    put_option(&mut o, option::CLIENT_ID, &duid_ll(SUB_MAC.0));
    put_option(&mut o, option::SERVER_ID, &duid_ll(ACC_MAC.0));
    if ty == mt::ADVERTISE {
        put_option(&mut o, option::PREFERENCE, &[255]);
    }
    let mut na = Vec::new();
    ia_addr_option(&mut na, "2001:db8:100::1".parse().unwrap(), 3600, 7200);
    put_option(&mut o, option::IA_NA, &ia(1, 1800, 2880, &na));
    let mut pd = Vec::new();
    ia_prefix_option(&mut pd, "2001:db8:200::/56".parse().unwrap(), 3600, 7200);
    put_option(&mut o, option::IA_PD, &ia(2, 1800, 2880, &pd));
    let dns: Ipv6Addr = DNS6.parse().unwrap();
    put_option(&mut o, option::DNS_SERVERS, &dns.octets());
    message(ty, xid, &o)
}

fn counter(r: &Rig, name: &str) -> u64 {
    r.core
        .ipv6()
        .unwrap()
        .counters()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

fn installed(r: &Rig) -> tollgate_dataplane::session::SessionSpec {
    r.commands
        .iter()
        .find_map(|c| match c {
            Command::SessionAdd(s) => Some(*s),
            _ => None,
        })
        .expect("the session is installed")
}

fn delegations(r: &mut Rig) -> Vec<(u32, Option<(u64, u8)>)> {
    let out = r
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::SessionDelegated6 { id, prefix } => Some((*id, *prefix)),
            _ => None,
        })
        .collect();
    r.commands
        .retain(|c| !matches!(c, Command::SessionDelegated6 { .. }));
    out
}

/// Only the DHCPv6 frames (RAs left out).
fn dhcp_frames(r: &mut Rig) -> Vec<Vec<u8>> {
    r.take_frames()
        .into_iter()
        .map(|f| f.bytes().to_vec())
        .filter(|b| b.len() > 56 && b[20] == 17)
        .collect()
}

/// An unknown MAC's SOLICIT logs it in by MAC; once its session has its /64 the
/// ADVERTISE goes out, the REQUEST gets the REPLY and the session its delegated prefix;
/// RELEASE takes the prefix away (the session stays) and returns it to the pool.
#[test]
fn an_unknown_mac_s_solicit_logs_in_and_gets_an_address_and_a_prefix() {
    let mut r = Rig::with(dhcp_settings());
    let solicit = client_message(mt::SOLICIT, 0x00a1b2, &[]);
    r.punt(Side::Access, &from_client(&solicit));
    assert!(
        dhcp_frames(&mut r).is_empty(),
        "nothing until the login is decided"
    );
    assert_eq!(r.auth.len(), 1);
    let a = r.auth.remove(0);
    assert_eq!(a.calling_station.as_deref(), Some("02:00:00:00:00:42"));
    // A retransmission while deciding starts no second login and gets nothing.
    r.punt(Side::Access, &from_client(&solicit));
    assert!(r.auth.is_empty() && dhcp_frames(&mut r).is_empty());
    assert_eq!(counter(&r, "dhcpv6_decision_pending"), 1);
    r.core.on_auth(
        r.now,
        a.login,
        AuthAnswer::Accept {
            user: "v6-first".into(),
            authorization: Box::new(Authorization::default()),
        },
    );
    r.drain();
    let spec = installed(&r);
    assert_eq!(spec.mac, Some(SUB_MAC));
    assert_eq!(
        dhcp_frames(&mut r),
        vec![to_client(&granted(mt::ADVERTISE, 0x00a1b2))]
    );
    assert!(delegations(&mut r).is_empty(), "not before the REQUEST");
    let mut sid = Vec::new();
    put_option(&mut sid, option::SERVER_ID, &duid_ll(ACC_MAC.0));
    r.punt(
        Side::Access,
        &from_client(&client_message(mt::REQUEST, 0x00c3d4, &sid)),
    );
    assert_eq!(
        dhcp_frames(&mut r),
        vec![to_client(&granted(mt::REPLY, 0x00c3d4))]
    );
    assert_eq!(
        delegations(&mut r),
        vec![(spec.id, Some((0x2001_0db8_0200_0000, 56)))]
    );
    let lease = r.core.ipv6().unwrap().dhcpv6_lease_of(spec.id).unwrap();
    assert_eq!(
        lease.grant.address,
        Some("2001:db8:100::1".parse().unwrap())
    );
    for (k, v) in [
        ("dhcpv6_solicit", 2),
        ("dhcpv6_advertise", 1),
        ("dhcpv6_request", 1),
        ("dhcpv6_reply", 1),
        ("dhcpv6_logins", 1),
        ("dhcpv6_granted", 1),
        ("dhcpv6_delegated", 1),
        ("dhcpv6_bindings", 1),
    ] {
        assert_eq!(counter(&r, k), v, "{k}");
    }
    // RELEASE: a REPLY with status Success, the prefix taken away, the session stays.
    let mut na = Vec::new();
    ia_addr_option(&mut na, "2001:db8:100::1".parse().unwrap(), 0, 0);
    let mut pd = Vec::new();
    ia_prefix_option(&mut pd, "2001:db8:200::/56".parse().unwrap(), 0, 0);
    let mut release = Vec::new();
    put_option(&mut release, option::CLIENT_ID, &duid_ll(SUB_MAC.0));
    release.extend_from_slice(&sid);
    put_option(&mut release, option::IA_NA, &ia(1, 0, 0, &na));
    put_option(&mut release, option::IA_PD, &ia(2, 0, 0, &pd));
    r.punt(
        Side::Access,
        &from_client(&message(mt::RELEASE, 0x00e5f6, &release)),
    );
    let mut want = Vec::new();
    put_option(&mut want, option::CLIENT_ID, &duid_ll(SUB_MAC.0));
    put_option(&mut want, option::SERVER_ID, &duid_ll(ACC_MAC.0));
    wire::status_option(&mut want, wire::status::SUCCESS, "released");
    assert_eq!(
        dhcp_frames(&mut r),
        vec![to_client(&message(mt::REPLY, 0x00e5f6, &want))]
    );
    assert_eq!(delegations(&mut r), vec![(spec.id, None)]);
    assert_eq!(counter(&r, "dhcpv6_delegated_released"), 1);
    assert_eq!(counter(&r, "dhcpv6_bindings"), 0);
    assert!(r.core.ipv6().unwrap().prefix_of(spec.id).is_some());
    assert!(r.core.sessions().get(spec.id).is_some());
}

/// An IPv4-first session's client asks with Rapid Commit: the REPLY comes at once and
/// binds; the session's end ends the binding and takes its prefix away.
#[test]
fn a_session_s_rapid_commit_solicit_binds_at_once_and_ends_with_it() {
    let mut r = Rig::with(dhcp_settings());
    let id = r
        .core
        .open_session(
            r.now,
            SessionRequest {
                user: "alice".into(),
                address: Ipv4Addr::new(100, 64, 0, 5),
                mac: Some(SUB_MAC),
                channel: None,
                services: Default::default(),
                bandwidth: Default::default(),
                limits: Default::default(),
                max_flows: 0,
            },
        )
        .unwrap();
    r.drain();
    r.take_frames();
    let mut rc = Vec::new();
    put_option(&mut rc, option::RAPID_COMMIT, &[]);
    r.punt(
        Side::Access,
        &from_client(&client_message(mt::SOLICIT, 0x000777, &rc)),
    );
    assert!(r.auth.is_empty(), "the session exists: no login");
    let frames = dhcp_frames(&mut r);
    assert_eq!(frames.len(), 1);
    let reply = &frames[0][62..];
    let p = wire::Packet::new_checked(reply).unwrap();
    assert_eq!(p.msg_type(), mt::REPLY);
    assert!(
        p.options()
            .map_while(Result::ok)
            .any(|o| o.code == option::RAPID_COMMIT)
    );
    assert_eq!(
        delegations(&mut r),
        vec![(id, Some((0x2001_0db8_0200_0000, 56)))]
    );
    r.core.on_event(
        r.now,
        0,
        Event::SessionClosed(ClosedSession {
            id,
            user: 1,
            channel: 0,
            address: Ipv4Addr::new(100, 64, 0, 5),
            cause: DisconnectCause::AdminReset,
            counters: SessionCounters::default(),
            started: Instant(SEC),
            stopped: r.now,
        }),
    );
    r.drain();
    assert_eq!(delegations(&mut r), vec![(id, None)]);
    assert_eq!(counter(&r, "dhcpv6_delegated_released"), 1);
    assert_eq!(counter(&r, "dhcpv6_bindings"), 0);
}

/// RAs carry the M and O flags when DHCPv6 is on, neither when off.
#[test]
fn ras_carry_m_and_o_with_dhcpv6() {
    for (s, flags) in [(settings(), 0u8), (dhcp_settings(), 0xc0)] {
        let mut r = Rig::with(s);
        let rs = nd_frame(
            SUB_MAC,
            MacAddr([0x33, 0x33, 0, 0, 0, 2]),
            sub_ll(),
            "ff02::2".parse().unwrap(),
            133,
            &[],
        );
        r.punt(Side::Access, &rs);
        let frames = r.take_frames();
        let (_, _, _, _, icmp) = read(&frames[0]);
        assert_eq!(icmp[0], 134);
        assert_eq!(icmp[5] & 0xc0, flags);
    }
}

/// RADIUS gives the session its IPv6 (Framed-IPv6-Prefix, Framed-Interface-Id,
/// Delegated-IPv6-Prefix): its /64, its IA_NA address and its delegated prefix are those;
/// with Rapid Commit the binding comes with the login, so the Start already names all
/// three, and the Stop does.
#[test]
fn aaa_s_ipv6_attributes_are_granted_and_accounted() {
    let mut r = Rig::with(dhcp_settings());
    let mut rc = Vec::new();
    put_option(&mut rc, option::RAPID_COMMIT, &[]);
    r.punt(
        Side::Access,
        &from_client(&client_message(mt::SOLICIT, 0x000999, &rc)),
    );
    let a = r.auth.remove(0);
    let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    r.core.on_auth(
        r.now,
        a.login,
        AuthAnswer::Accept {
            user: "radius-v6".into(),
            authorization: Box::new(Authorization {
                framed_ipv6_prefix: Some((v6("2001:db8:7:9::"), 64)),
                framed_interface_id: Some(0x42),
                delegated_ipv6_prefix: Some((v6("2001:db8:300:500::"), 56)),
                ..Authorization::default()
            }),
        },
    );
    r.drain();
    let spec = installed(&r);
    assert_eq!(
        r.core
            .ipv6()
            .unwrap()
            .prefix_of(spec.id)
            .unwrap()
            .to_string(),
        "2001:db8:7:9::/64"
    );
    assert_eq!(
        delegations(&mut r),
        vec![(spec.id, Some((0x2001_0db8_0300_0500, 56)))]
    );
    let lease = r.core.ipv6().unwrap().dhcpv6_lease_of(spec.id).unwrap();
    assert_eq!(lease.grant.address, Some(v6("2001:db8:7:9::42")));
    let start = &r.accounts[0];
    assert_eq!(start.status, crate::radius::dict::AcctStatusType::Start);
    assert_eq!(
        start.ipv6,
        Some(crate::radius::attrs::AcctIpv6 {
            framed_prefix: Some((v6("2001:db8:7:9::"), 64)),
            interface_id: Some(0x42),
            delegated_prefix: Some((v6("2001:db8:300:500::"), 56)),
        })
    );
    r.core.on_event(
        r.now,
        0,
        Event::SessionClosed(ClosedSession {
            id: spec.id,
            user: 1,
            channel: 0,
            address: spec.address,
            cause: DisconnectCause::AdminReset,
            counters: SessionCounters::default(),
            started: Instant(SEC),
            stopped: r.now,
        }),
    );
    r.drain();
    let stop = r.accounts.last().unwrap();
    assert_eq!(stop.status, crate::radius::dict::AcctStatusType::Stop);
    assert_eq!(
        stop.ipv6,
        Some(crate::radius::attrs::AcctIpv6 {
            framed_prefix: Some((v6("2001:db8:7:9::"), 64)),
            interface_id: Some(0x42),
            delegated_prefix: Some((v6("2001:db8:300:500::"), 56)),
        })
    );
    // The RADIUS prefix was not the pool's: the pool is untouched.
    assert_eq!(counter(&r, "dhcpv6_delegated_released"), 1);
}

/// The prefixes of the session `SessionPrefix6` commands named, in order (taken).
fn prefixes64(r: &mut Rig) -> Vec<(u32, Option<u64>)> {
    let out = r
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::SessionPrefix6 { id, prefix } => Some((*id, *prefix)),
            _ => None,
        })
        .collect();
    r.commands
        .retain(|c| !matches!(c, Command::SessionPrefix6 { .. }));
    out
}

/// Issue 16 item 1 for DHCPv6, in the style of DHCPv4's
/// `leases_survive_a_restart_and_log_in_again_with_their_address`: an IPv6-first
/// subscriber's binding (IA_NA and IA_PD) is kept at its REPLY; after a restart it is
/// bound again, the subscriber logged in by MAC, and its session gets the same /64 and
/// delegated prefix back (neither handed to another session meanwhile); its RENEW is
/// answered with the same address and prefix as if nothing happened.
#[test]
fn dhcpv6_bindings_survive_a_restart_with_their_64_and_delegated_prefix() {
    let mut r = Rig::with(dhcp_settings());
    let mut rc = Vec::new();
    put_option(&mut rc, option::RAPID_COMMIT, &[]);
    r.punt(
        Side::Access,
        &from_client(&client_message(mt::SOLICIT, 0x000123, &rc)),
    );
    let a = r.auth.remove(0);
    r.core.on_auth(
        r.now,
        a.login,
        AuthAnswer::Accept {
            user: "v6-first".into(),
            authorization: Box::new(Authorization::default()),
        },
    );
    r.drain();
    let spec = installed(&r);
    assert_eq!(
        prefixes64(&mut r),
        vec![(spec.id, Some(0x2001_0db8_0100_0000))]
    );
    assert_eq!(
        delegations(&mut r),
        vec![(spec.id, Some((0x2001_0db8_0200_0000, 56)))]
    );
    assert_eq!(r.leases.len(), 1);
    assert_eq!(r.leases[0].key, "v6.0.-.--02:00:00:00:00:42");
    let kept = r.leases[0].lease.clone().unwrap();
    assert!(crate::gateway::dhcpv6_restart::is_binding_record(&kept));
    // The gateway stops: the session's end keeps the binding in the file.
    r.core.dhcp_stopping();
    r.core.on_event(
        r.now,
        0,
        Event::SessionClosed(ClosedSession {
            id: spec.id,
            user: 1,
            channel: 0,
            address: spec.address,
            cause: DisconnectCause::NasReboot,
            counters: SessionCounters::default(),
            started: spec.started,
            stopped: r.now,
        }),
    );
    r.drain();
    assert_eq!(r.leases.len(), 1, "no removal while stopping");
    assert_eq!(counter(&r, "dhcpv6_bindings"), 1);

    // 100 s later the gateway starts again.
    let now = r.now + Duration::from_secs(100);
    let mut r2 = Rig::at(dhcp_settings(), now);
    r2.now = now;
    assert_eq!(
        r2.core.dhcpv6_restore(now, &[vec![1, 2, 3], kept.clone()]),
        1
    );
    assert_eq!(counter(&r2, "dhcpv6_bindings_restored"), 1);
    assert_eq!(counter(&r2, "dhcpv6_bindings"), 1);
    // Another subscriber's session meanwhile gets another /64.
    let other = r2
        .core
        .open_session(
            r2.now,
            SessionRequest {
                user: "bob".into(),
                address: Ipv4Addr::new(100, 64, 0, 9),
                mac: Some(MacAddr([0x02, 0, 0, 0, 0, 0x77])),
                channel: None,
                services: Default::default(),
                bandwidth: Default::default(),
                limits: Default::default(),
                max_flows: 0,
            },
        )
        .unwrap();
    r2.drain();
    assert_eq!(
        prefixes64(&mut r2),
        vec![(other, Some(0x2001_0db8_0100_0001))]
    );
    // The restored subscriber logs in by MAC; its session gets its /64 and prefix back.
    assert_eq!(r2.auth.len(), 1);
    assert_eq!(
        r2.auth[0].calling_station.as_deref(),
        Some("02:00:00:00:00:42")
    );
    let a = r2.auth.remove(0);
    r2.core.on_auth(
        r2.now,
        a.login,
        AuthAnswer::Accept {
            user: "v6-first".into(),
            authorization: Box::new(Authorization::default()),
        },
    );
    r2.drain();
    let s2 = r2
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::SessionAdd(s) if s.mac == Some(SUB_MAC) => Some(*s),
            _ => None,
        })
        .next()
        .expect("the session is back");
    assert_eq!(
        prefixes64(&mut r2),
        vec![(s2.id, Some(0x2001_0db8_0100_0000))]
    );
    assert_eq!(
        delegations(&mut r2),
        vec![(s2.id, Some((0x2001_0db8_0200_0000, 56)))]
    );
    // The client renews as usual: the same address and prefix, full lifetimes.
    dhcp_frames(&mut r2);
    let mut renew = Vec::new();
    put_option(&mut renew, option::CLIENT_ID, &duid_ll(SUB_MAC.0));
    put_option(&mut renew, option::SERVER_ID, &duid_ll(ACC_MAC.0));
    put_option(&mut renew, option::ELAPSED_TIME, &[0, 0]);
    let mut na = Vec::new();
    ia_addr_option(&mut na, "2001:db8:100::1".parse().unwrap(), 3600, 7200);
    put_option(&mut renew, option::IA_NA, &ia(1, 0, 0, &na));
    let mut pd = Vec::new();
    ia_prefix_option(&mut pd, "2001:db8:200::/56".parse().unwrap(), 3600, 7200);
    put_option(&mut renew, option::IA_PD, &ia(2, 0, 0, &pd));
    put_option(&mut renew, option::ORO, &option::DNS_SERVERS.to_be_bytes());
    r2.punt(
        Side::Access,
        &from_client(&message(mt::RENEW, 0x000456, &renew)),
    );
    assert_eq!(
        dhcp_frames(&mut r2),
        vec![to_client(&granted(mt::REPLY, 0x000456))]
    );
    assert_eq!(counter(&r2, "dhcpv6_renew"), 1);
    // The renewal is kept too (a later expiry).
    let last = r2.leases.last().unwrap();
    assert_eq!(last.key, "v6.0.-.--02:00:00:00:00:42");
    assert_ne!(last.lease.as_ref(), Some(&kept));

    // Restored after it ran out (7200 s valid): forgotten, nobody logs in.
    let late = r.now + Duration::from_secs(7300);
    let mut r3 = Rig::at(dhcp_settings(), late);
    r3.now = late;
    assert_eq!(r3.core.dhcpv6_restore(late, &[kept]), 0);
    r3.drain();
    assert!(r3.auth.is_empty());
    assert_eq!(r3.leases.len(), 1);
    assert_eq!(r3.leases[0].lease, None);
    assert_eq!(counter(&r3, "dhcpv6_bindings"), 0);
}

/// Relay mode towards one server (`KEA6`), no /64 pool and no delegated pool of our
/// own (the server's IA_NA gives the session its /64).
fn relay_settings() -> Ipv6Settings {
    let mut s = dhcp_settings();
    s.pool = None;
    let d = s.dhcpv6.as_mut().unwrap();
    d.delegated_pool = None;
    d.relay = Some(crate::dhcpv6::RelayConfig::new(
        ACC_MAC.0,
        RELAY_LINK,
        vec![KEA6],
    ));
    s
}

const KEA6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xfe, 0, 0, 0, 0, 0x20);
const RELAY_LINK: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 1, 0, 0, 0, 1);
const KEA_DUID: [u8; 14] = [0, 1, 0, 1, 0x2e, 0x1c, 0x3a, 0x10, 2, 0xfe, 0, 0, 0, 0x20];

/// The inner message of a RELAY-FORW, and its Peer-Address.
fn relayed(t: &crate::dhcpv6::ToServer) -> (Ipv6Addr, Vec<u8>) {
    let rp = wire::RelayPacket::new_checked(&t.message[..]).unwrap();
    let inner = rp
        .options()
        .map(Result::unwrap)
        .find(|o| o.code == option::RELAY_MSG)
        .unwrap()
        .value
        .to_vec();
    (rp.peer_address(), inner)
}

/// Issue 16, relay mode over a restart: Kea's REPLY binds the subscriber (IPv6 first,
/// logged in by MAC); the kept record has the binding's server end (Kea's DUID and
/// address, the client's Peer-Address). After a restart the binding is restored from
/// the record, the session comes back, and when it ends the gateway's RELEASE to Kea is
/// byte for byte the one it sends without a restart: with Kea's Server Identifier
/// (without one Kea discards it, RFC 8415 18.3.7, and keeps the address bound).
#[test]
fn relay_mode_the_gateways_release_after_a_restart_names_the_server() {
    let addr: Ipv6Addr = "2001:db8:100:1::1000".parse().unwrap();
    let pd: Prefix = "2001:db8:200:100::/56".parse().unwrap();
    // Kea's REPLY to the client's Rapid Commit SOLICIT.
    let reply = |xid: u32| {
        let mut o = Vec::new();
        put_option(&mut o, option::CLIENT_ID, &duid_ll(SUB_MAC.0));
        put_option(&mut o, option::SERVER_ID, &KEA_DUID);
        put_option(&mut o, option::RAPID_COMMIT, &[]);
        let mut na = Vec::new();
        ia_addr_option(&mut na, addr, 300, 600);
        put_option(&mut o, option::IA_NA, &ia(1, 150, 240, &na));
        let mut p = Vec::new();
        ia_prefix_option(&mut p, pd, 300, 600);
        put_option(&mut o, option::IA_PD, &ia(2, 150, 240, &p));
        let mut rr = Vec::new();
        put_option(&mut rr, option::RELAY_MSG, &message(mt::REPLY, xid, &o));
        wire::relay_message(mt::RELAY_REPL, 0, RELAY_LINK, sub_ll(), &rr)
    };
    let accept = |r: &mut Rig| {
        let a = r.auth.remove(0);
        r.core.on_auth(
            r.now,
            a.login,
            AuthAnswer::Accept {
                user: "relay6".into(),
                authorization: Box::new(Authorization::default()),
            },
        );
        r.drain();
        installed(r)
    };
    let closed = |r: &mut Rig, spec: tollgate_dataplane::session::SessionSpec, cause| {
        r.core.on_event(
            r.now,
            0,
            Event::SessionClosed(ClosedSession {
                id: spec.id,
                user: 1,
                channel: 0,
                address: spec.address,
                cause,
                counters: SessionCounters::default(),
                started: spec.started,
                stopped: r.now,
            }),
        );
        r.drain();
    };
    let mut rc = Vec::new();
    put_option(&mut rc, option::RAPID_COMMIT, &[]);
    let solicit = from_client(&client_message(mt::SOLICIT, 0x000123, &rc));

    // Without a restart, for comparison: bound, then the session ends.
    let mut r0 = Rig::with(relay_settings());
    r0.punt(Side::Access, &solicit);
    assert_eq!(r0.to_servers.len(), 1);
    r0.core.on_dhcpv6_server(r0.now, KEA6, &reply(0x000123));
    r0.drain();
    let s0 = accept(&mut r0);
    r0.to_servers.clear();
    closed(&mut r0, s0, DisconnectCause::AdminReset);
    assert_eq!(r0.to_servers.len(), 1);
    let unrestarted = r0.to_servers[0].clone();

    let mut r = Rig::with(relay_settings());
    r.punt(Side::Access, &solicit);
    r.core.on_dhcpv6_server(r.now, KEA6, &reply(0x000123));
    r.drain();
    let spec = accept(&mut r);
    let kept = r.leases.last().unwrap().lease.clone().unwrap();
    let unix = r.now.0 / SEC;
    let (_, lease, from) = crate::gateway::dhcpv6_restart::decode(&kept, r.now, unix).unwrap();
    assert_eq!(lease.grant.address, Some(addr));
    assert_eq!(lease.grant.prefix, Some(pd));
    assert_eq!(
        from,
        Some(crate::dhcpv6::BindingServer {
            server_id: KEA_DUID.to_vec(),
            server: KEA6,
            peer: sub_ll(),
        })
    );
    // The gateway stops: the binding stays, nothing goes to Kea.
    r.to_servers.clear();
    r.core.dhcp_stopping();
    closed(&mut r, spec, DisconnectCause::NasReboot);
    assert!(r.to_servers.is_empty(), "no RELEASE while stopping");

    // 100 s later the gateway starts again with the record.
    let now = r.now + Duration::from_secs(100);
    let mut r2 = Rig::at(relay_settings(), now);
    r2.now = now;
    assert_eq!(r2.core.dhcpv6_restore(now, &[kept]), 1);
    r2.drain();
    assert_eq!(counter(&r2, "dhcpv6_bindings_restored"), 1);
    let s2 = accept(&mut r2);
    assert_eq!(s2.mac, Some(SUB_MAC));
    assert_eq!(
        prefixes64(&mut r2),
        vec![(s2.id, Some(0x2001_0db8_0100_0001))],
        "the session's /64 is the binding's"
    );
    closed(&mut r2, s2, DisconnectCause::AdminReset);
    assert_eq!(r2.to_servers.len(), 1);
    let t = &r2.to_servers[0];
    assert_eq!(t.dst, KEA6);
    assert_eq!(t, &unrestarted, "the RELEASE sent without a restart");
    let (peer, inner) = relayed(t);
    assert_eq!(peer, sub_ll());
    let mut o = Vec::new();
    put_option(&mut o, option::CLIENT_ID, &duid_ll(SUB_MAC.0));
    put_option(&mut o, option::SERVER_ID, &KEA_DUID);
    let mut na = Vec::new();
    ia_addr_option(&mut na, addr, 0, 0);
    put_option(&mut o, option::IA_NA, &ia(1, 0, 0, &na));
    let mut p = Vec::new();
    ia_prefix_option(&mut p, pd, 0, 0);
    put_option(&mut o, option::IA_PD, &ia(2, 0, 0, &p));
    assert_eq!(inner, message(mt::RELEASE, 1, &o), "byte for byte");
}

/// The binding record's byte form: version 2 with and without a server end, the
/// version-1 form still read, and every cut refused.
#[test]
fn binding_records_keep_the_server_end_and_read_version_1() {
    use crate::gateway::dhcpv6_restart::{decode, encode};
    let now = Instant(50 * SEC);
    let unix = 1_796_000_000;
    let lease = crate::dhcpv6::Lease {
        id: crate::dhcp::LoginId(7),
        subscriber: crate::ipoe::Subscriber::new(crate::pppoe::Line::untagged(0), SUB_MAC.0),
        duid: duid_ll(SUB_MAC.0),
        grant: crate::dhcpv6::Grant::new(Some("2001:db8:100:1::1000".parse().unwrap()), None),
        iaid_na: Some(1),
        iaid_pd: None,
        started: now,
        expires: now + Duration::from_secs(600),
    };
    let from = crate::dhcpv6::BindingServer {
        server_id: KEA_DUID.to_vec(),
        server: KEA6,
        peer: sub_ll(),
    };
    let l = lease.encode(now, unix);
    let with = encode(Some(0x2001_0db8_0100_0001), &lease, Some(&from), now, unix);
    let mut want = vec![0x76, 2, 1, 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 0x00, 0x01];
    want.extend_from_slice(&(l.len() as u16).to_be_bytes());
    want.extend_from_slice(&l);
    want.push(1);
    want.extend_from_slice(&from.encode());
    assert_eq!(with, want);
    assert_eq!(
        decode(&with, now, unix).unwrap(),
        (
            Some(0x2001_0db8_0100_0001),
            lease.clone(),
            Some(from.clone())
        )
    );
    let without = encode(None, &lease, None, now, unix);
    assert_eq!(without.len(), 11 + 2 + l.len() + 1);
    assert_eq!(without[11 + 2 + l.len()], 0, "no server end");
    assert_eq!(
        decode(&without, now, unix).unwrap(),
        (None, lease.clone(), None)
    );
    // Version 1: the /64, then the lease to the end.
    let mut v1 = vec![0x76, 1, 1, 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 0x00, 0x01];
    v1.extend_from_slice(&l);
    assert_eq!(
        decode(&v1, now, unix).unwrap(),
        (Some(0x2001_0db8_0100_0001), lease, None)
    );
    for n in 0..with.len() {
        assert!(decode(&with[..n], now, unix).is_err(), "cut at {n}");
    }
    let mut longer = without.clone();
    longer.push(0);
    assert!(decode(&longer, now, unix).is_err(), "a byte left over");
    let mut v3 = with.clone();
    v3[1] = 3;
    assert!(decode(&v3, now, unix).is_err(), "an unknown version");
}

/// Issue 16: a DHCPv6 binding that starts after the session's Start (an IPv4-first
/// session whose host asks later, SOLICIT then REQUEST) sends an Interim-Update at once,
/// with the session's counters read from its worker: on the wire it names
/// Framed-IPv6-Prefix, Framed-Interface-Id and Delegated-IPv6-Prefix, which the Start
/// could not. The periodic interims are not moved.
#[test]
fn a_binding_after_the_start_is_accounted_at_once() {
    use crate::radius::attrs::NasIdentity;
    use crate::radius::dict::{AcctStatusType, std_attr as sa};
    let mut r = Rig::with(dhcp_settings());
    let id = r
        .core
        .open_session(
            r.now,
            SessionRequest {
                user: "alice".into(),
                address: Ipv4Addr::new(100, 64, 0, 5),
                mac: Some(SUB_MAC),
                channel: None,
                services: Default::default(),
                bandwidth: Default::default(),
                limits: Default::default(),
                max_flows: 0,
            },
        )
        .unwrap();
    r.drain();
    assert_eq!(r.accounts.len(), 1);
    assert_eq!(r.accounts[0].status, AcctStatusType::Start);
    let start = r.accounts[0].to_request(&NasIdentity::default(), 0);
    assert!(start.get(sa::DELEGATED_IPV6_PREFIX).is_none());
    assert!(start.get(sa::FRAMED_INTERFACE_ID).is_none());
    r.commands.clear();
    // SOLICIT, ADVERTISE: nothing bound, nothing accounted.
    r.punt(
        Side::Access,
        &from_client(&client_message(mt::SOLICIT, 0x000321, &[])),
    );
    assert_eq!(r.accounts.len(), 1);
    let mut sid = Vec::new();
    put_option(&mut sid, option::SERVER_ID, &duid_ll(ACC_MAC.0));
    r.now = r.now + Duration::from_secs(3);
    r.punt(
        Side::Access,
        &from_client(&client_message(mt::REQUEST, 0x000654, &sid)),
    );
    // The REPLY binds: the worker is asked for the counters first.
    let seq = r
        .commands
        .iter()
        .find_map(|c| match c {
            Command::SessionQuery { id: i, seq } if *i == id => Some(*seq),
            _ => None,
        })
        .expect("the session's counters are asked for");
    assert_eq!(r.accounts.len(), 1, "not before the counters");
    let counters = SessionCounters {
        tx_packets: 7,
        tx_bytes: 700,
        rx_packets: 5,
        rx_bytes: 900,
    };
    r.core.on_event(
        r.now,
        0,
        Event::SessionCounters {
            id,
            seq,
            at: r.now,
            counters,
            last_seen: r.now,
            ipv6: None,
        },
    );
    r.drain();
    assert_eq!(r.accounts.len(), 2);
    let interim = &r.accounts[1];
    assert_eq!(interim.status, AcctStatusType::InterimUpdate);
    let req = interim.to_request(&NasIdentity::default(), 0);
    let got = |k| req.get(k).map(|a| a.value.clone());
    assert_eq!(got(sa::ACCT_STATUS_TYPE), Some(vec![0, 0, 0, 3]));
    assert_eq!(
        got(sa::FRAMED_IPV6_PREFIX),
        Some(vec![0, 64, 0x20, 0x01, 0x0d, 0xb8, 0x01, 0, 0, 0])
    );
    assert_eq!(
        got(sa::FRAMED_INTERFACE_ID),
        Some(vec![0, 0, 0, 0, 0, 0, 0, 1])
    );
    assert_eq!(
        got(sa::DELEGATED_IPV6_PREFIX),
        Some(vec![0, 56, 0x20, 0x01, 0x0d, 0xb8, 0x02, 0, 0])
    );
    assert_eq!(
        got(sa::ACCT_INPUT_OCTETS),
        Some(700u32.to_be_bytes().to_vec())
    );
    assert_eq!(got(sa::FRAMED_IP_ADDRESS), Some(vec![100, 64, 0, 5]));
    assert_eq!(
        got(sa::ACCT_SESSION_ID),
        r.accounts[0]
            .to_request(&NasIdentity::default(), 0)
            .get(sa::ACCT_SESSION_ID)
            .map(|a| a.value.clone())
    );
    assert_eq!(counter(&r, "dhcpv6_accounting_updates"), 1);
}
