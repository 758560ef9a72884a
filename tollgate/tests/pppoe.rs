//! PPPoE subscribers through the whole daemon on memory ports (issue 14): real frames in
//! at the access port, the fast path punting discovery and PPP control to the control
//! core, logins against the local store (CHAP with the 0600 secrets file, PAP with the
//! Argon2 hash), IPCP, then IPv4 in PPPoE through the fast path both ways with exact
//! counters, and the gateway's LCP Terminate-Request and PADT on `ctl session remove`
//! and on a session timeout. The subscriber is the PPP client engine behind a small
//! discovery client; frames are checked with etherparse.

mod support;

use std::net::Ipv4Addr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use support::gateway::{Gw, wait};
use tollgate_control::store::{ChapSecret, Store, Subscriber, hash_password};
use tollgate_control_core::entropy::Sequence;
use tollgate_control_core::ppp::{Client, ClientPhase};
use tollgate_control_core::pppoe::wire::{self as pwire, SessionPacket, code, tag};
use tollgate_control_core::wire::ethernet::{self, Tag};
use tollgate_dataplane::MacAddr;
use tollgate_testkit::frame::udp_ports;
use tollgate_testkit::lab::{ACC_MAC, CORE_MAC, SRV, SRV_MAC};

const SUB: [u8; 6] = [0x02, 0x10, 0, 0, 0, 0x42];

fn config(auth: &str) -> String {
    format!(
        r#"
[[pool]]
name = "ppp"
[[pool.range]]
first = "10.10.0.100"
last = "10.10.0.110"

[pppoe]
enabled = true
ac_name = "tg-test"
auth = ["{auth}"]
dns = ["192.0.2.53", "192.0.2.54"]
port_name = "acc0"
"#
    )
}

fn store(dir: &std::path::Path, subs: &[Subscriber]) {
    let mut st = Store::open(&dir.join("subscribers.db")).unwrap();
    for s in subs {
        st.add(s).unwrap();
    }
}

/// One subscriber: a discovery client and the PPP client engine.
struct Sub {
    tags: Vec<Tag>,
    client: Client,
    session: u16,
    padt: bool,
    /// LCP Terminate-Requests the gateway sent (their data), in order with PADT.
    events: Vec<String>,
    /// IPv4 packets that came down in PPPoE.
    ip_down: Vec<Vec<u8>>,
    /// A TR-101 tag the access node inserts in PADI and PADR.
    line_id: Option<Vec<u8>>,
}

impl Sub {
    fn new(tags: Vec<Tag>, user: &[u8], secret: &[u8]) -> Sub {
        Sub {
            tags,
            client: Client::new(user, secret, &mut Sequence::new(5)),
            session: 0,
            padt: false,
            events: Vec::new(),
            ip_down: Vec::new(),
            line_id: None,
        }
    }

    fn frame(&self, dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        ethernet::write_header(&mut b, dst, SUB, &self.tags, ethertype);
        b.extend_from_slice(payload);
        b
    }

    fn padi(&self) -> Vec<u8> {
        let mut t = Vec::new();
        pwire::put_tag(&mut t, tag::SERVICE_NAME, b"");
        pwire::put_tag(&mut t, tag::HOST_UNIQ, b"hu");
        if let Some(l) = &self.line_id {
            pwire::put_tag(&mut t, tag::VENDOR_SPECIFIC, l);
        }
        self.frame([0xff; 6], 0x8863, &pwire::build(code::PADI, 0, &t))
    }

    /// An IPv4 packet up in the session.
    fn ip_up(&self, ip: &[u8]) -> Vec<u8> {
        self.frame(
            ACC_MAC.0,
            0x8864,
            &pwire::session_frame(self.session, 0x0021, ip),
        )
    }

    /// Handles what the gateway sent; returns the frames to send back.
    fn input(&mut self, f: &[u8]) -> Vec<Vec<u8>> {
        let h = ethernet::Frame::new_checked(f).unwrap().header().unwrap();
        assert_eq!(h.dst, SUB, "to the subscriber");
        assert_eq!(h.src, ACC_MAC.0, "from the access port");
        let tags: Vec<(u16, u16)> = [h.outer, h.inner]
            .into_iter()
            .flatten()
            .map(|t| (t.tpid, t.vid))
            .collect();
        let want: Vec<(u16, u16)> = self.tags.iter().map(|t| (t.tpid, t.vid)).collect();
        assert_eq!(tags, want, "on the subscriber's VLANs");
        let payload = &f[h.payload_at..];
        let mut out = Vec::new();
        if h.ethertype == 0x8863 {
            let p = pwire::Packet::new_checked(payload).unwrap();
            match p.code() {
                code::PADO => {
                    let mut t = Vec::new();
                    pwire::put_tag(&mut t, tag::SERVICE_NAME, b"");
                    pwire::put_tag(&mut t, tag::HOST_UNIQ, b"hu");
                    for tg in p.tags().flatten() {
                        if tg.kind == tag::AC_COOKIE {
                            pwire::put_tag(&mut t, tag::AC_COOKIE, tg.value);
                        }
                    }
                    if let Some(l) = &self.line_id {
                        pwire::put_tag(&mut t, tag::VENDOR_SPECIFIC, l);
                    }
                    out.push(self.frame(ACC_MAC.0, 0x8863, &pwire::build(code::PADR, 0, &t)));
                }
                code::PADS => {
                    self.session = p.session_id();
                    self.client.start();
                }
                code::PADT => {
                    assert_eq!(p.session_id(), self.session);
                    self.padt = true;
                    self.events.push("padt".into());
                }
                _ => {}
            }
        } else {
            assert_eq!(h.ethertype, 0x8864);
            let p = SessionPacket::new_checked(payload).unwrap();
            assert_eq!(p.session_id(), self.session);
            if p.protocol() == 0x0021 {
                self.ip_down.push(p.ppp_payload().to_vec());
            } else {
                let pkt = p.ppp_payload();
                if p.protocol() == 0xc021 && pkt.first() == Some(&5) {
                    self.events.push(format!(
                        "terminate {}",
                        String::from_utf8_lossy(pkt.get(4..).unwrap_or_default())
                    ));
                }
                self.client.handle_input(p.protocol(), pkt);
            }
        }
        while let Some(t) = self.client.poll_transmit() {
            out.push(self.frame(
                ACC_MAC.0,
                0x8864,
                &pwire::session_frame(self.session, t.protocol, &t.packet),
            ));
        }
        out
    }

    /// Moves frames both ways once; true if any moved.
    fn pump(&mut self, gw: &mut Gw) -> bool {
        let got = gw.access.drain();
        let any = !got.is_empty();
        for f in got {
            for r in self.input(&f) {
                assert!(gw.access.send(r));
            }
        }
        any
    }

    /// Discovery, LCP, authentication and IPCP; the address.
    fn connect(&mut self, gw: &mut Gw) -> Ipv4Addr {
        assert!(gw.access.send(self.padi()));
        wait("PPP up", || {
            self.pump(gw);
            (self.client.phase() == ClientPhase::Up).then_some(())
        });
        self.client.address().unwrap()
    }
}

fn qinq(c: u16) -> Vec<Tag> {
    vec![
        Tag {
            tpid: 0x88a8,
            pcp: 0,
            dei: false,
            vid: 100,
        },
        Tag {
            tpid: 0x8100,
            pcp: 0,
            dei: false,
            vid: c,
        },
    ]
}

fn udp_payload(ip: &[u8]) -> (Ipv4Addr, Ipv4Addr, Vec<u8>) {
    let p = SlicedPacket::from_ip(ip).unwrap();
    let Some(NetSlice::Ipv4(v4)) = p.net else {
        panic!("not IPv4")
    };
    let Some(TransportSlice::Udp(u)) = p.transport else {
        panic!("not UDP")
    };
    (
        v4.header().source_addr(),
        v4.header().destination_addr(),
        u.payload().to_vec(),
    )
}

#[test]
fn chap_subscriber_on_qinq_forwards_both_ways_and_ends_with_terminate_and_padt() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Subscriber::new("alice");
    alice.chap_secret = Some(ChapSecret(b"s3cret".to_vec()));
    store(dir.path(), &[alice]);
    let mut gw = Gw::start(dir.path(), &config("chap"));
    let mut sub = Sub::new(qinq(7), b"alice", b"s3cret");
    let addr = sub.connect(&mut gw);
    assert_eq!(addr, Ipv4Addr::new(10, 10, 0, 100));
    assert_eq!(
        sub.client.dns(),
        [Ipv4Addr::new(192, 0, 2, 53), Ipv4Addr::new(192, 0, 2, 54)]
    );
    let v = gw.wait_open(&addr.to_string());
    assert_eq!(v["user"], "alice");
    assert_eq!(v["pppoe_session"], sub.session);
    assert_eq!(v["vlans"], "100.7");
    assert_eq!(v["nas_port_id"], "acc0.100.7");
    assert_eq!(v["ppp_phase"], "network");
    assert_eq!(v["auth"], "chap/accepted");
    assert_eq!(v["mac"], MacAddr(SUB).to_string());

    // 5 datagrams up in PPPoE come out of the core port as plain IPv4, 3 down come
    // out of the access port in PPPoE on the subscriber's VLANs.
    for i in 0..5u8 {
        let f = udp_ports(MacAddr(SUB), ACC_MAC, addr, 40000, SRV, 5001, 64, &[i; 100]);
        assert!(gw.access.send(sub.ip_up(&f[14..])));
    }
    let mut up = Vec::new();
    wait("5 up", || {
        up.extend(gw.core.drain());
        (up.len() >= 5).then_some(())
    });
    assert_eq!(up.len(), 5);
    for (i, f) in up.iter().enumerate() {
        assert_eq!(&f[12..14], &[0x08, 0x00], "decapsulated");
        let (s, d, p) = udp_payload(&f[14..]);
        assert_eq!((s, d, p), (addr, SRV, vec![i as u8; 100]));
    }
    for i in 0..3u8 {
        let f = udp_ports(
            SRV_MAC,
            CORE_MAC,
            SRV,
            5001,
            addr,
            40000,
            64,
            &[0xd0 + i; 60],
        );
        assert!(gw.core.send(f));
    }
    wait("3 down", || {
        sub.pump(&mut gw);
        (sub.ip_down.len() >= 3).then_some(())
    });
    assert_eq!(sub.ip_down.len(), 3);
    for (i, ip) in sub.ip_down.iter().enumerate() {
        let (s, d, p) = udp_payload(ip);
        assert_eq!((s, d, p), (SRV, addr, vec![0xd0 + i as u8; 60]));
    }

    // The operator ends it: Terminate-Request, then PADT; the record counts what went.
    let (ok, _) = gw.ctl(&["session", "remove", &addr.to_string()]);
    assert!(ok);
    wait("PADT", || {
        sub.pump(&mut gw);
        sub.padt.then_some(())
    });
    assert_eq!(sub.events, vec!["terminate admin_reset", "padt"]);
    let rec = wait("session record", || {
        gw.session_log()
            .into_iter()
            .find(|r| r["type"] == "session")
    });
    assert_eq!(rec["user"], "alice");
    assert_eq!(rec["cause"], "admin_reset");
    // Bytes are IP total lengths: 20 + 8 + payload.
    assert_eq!(
        (
            &rec["tx_packets"],
            &rec["tx_bytes"],
            &rec["rx_packets"],
            &rec["rx_bytes"]
        ),
        (&5.into(), &(5 * 128).into(), &3.into(), &(3 * 88).into())
    );
    let (_, c) = gw.ctl(&["show", "counters"]);
    assert_eq!(c["pppoe"]["ppp_sessions_installed"], 1);
    assert_eq!(c["pppoe"]["pppoe_padt_sent"], 1);
    assert_eq!(c["pppoe"]["ppp_sessions_open"], 0);
    gw.stop();
}

#[test]
fn pap_subscriber_is_ended_with_terminate_and_padt_at_its_session_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut bob = Subscriber::new("bob");
    bob.password_hash = Some(
        hash_password(
            "pw",
            tollgate_control::store::PasswordCost {
                memory_kib: 64,
                iterations: 1,
            },
        )
        .unwrap(),
    );
    bob.conditions.session_time_s = Some(1);
    store(dir.path(), &[bob]);
    let mut gw = Gw::start(dir.path(), &config("pap"));
    // Untagged.
    let mut sub = Sub::new(Vec::new(), b"bob", b"pw");
    let addr = sub.connect(&mut gw);
    let v = gw.wait_open(&addr.to_string());
    assert_eq!(v["auth"], "pap/accepted");
    assert_eq!(v["vlans"], "untagged");
    wait("the session timeout's PADT", || {
        sub.pump(&mut gw);
        sub.padt.then_some(())
    });
    assert_eq!(sub.events, vec!["terminate session_timeout", "padt"]);
    let rec = wait("session record", || {
        gw.session_log()
            .into_iter()
            .find(|r| r["type"] == "session")
    });
    assert_eq!(rec["cause"], "session_timeout");
    gw.stop();
}

#[test]
fn the_daemons_stop_ends_ppp_sessions_with_terminate_and_padt() {
    let dir = tempfile::tempdir().unwrap();
    let mut dave = Subscriber::new("dave");
    dave.chap_secret = Some(ChapSecret(b"d4ve".to_vec()));
    store(dir.path(), &[dave]);
    let mut gw = Gw::start(dir.path(), &config("chap"));
    let mut sub = Sub::new(qinq(8), b"dave", b"d4ve");
    let addr = sub.connect(&mut gw);
    gw.wait_open(&addr.to_string());
    gw.signal_stop();
    wait("PADT at the stop", || {
        sub.pump(&mut gw);
        sub.padt.then_some(())
    });
    assert_eq!(sub.events, vec!["terminate gateway shutdown", "padt"]);
    gw.join().unwrap();
}

/// Found with BNG Blaster (docs/ppp.md, Interop): at the stop of a gateway with 1000
/// sessions, the 2000 goodbye frames outnumbered the inject ring and the rest waited in
/// the dispatcher while the stop sequence counted its report rounds; the workers halted
/// with them and 494 subscribers got no PADT. Here an 8-slot ring and 10 sessions
/// (20 frames): every subscriber must get its Terminate-Request and PADT.
#[test]
fn the_daemons_stop_reaches_every_ppp_session_when_the_goodbyes_overflow_the_inject_ring() {
    let dir = tempfile::tempdir().unwrap();
    let mut dave = Subscriber::new("dave");
    dave.chap_secret = Some(ChapSecret(b"d4ve".to_vec()));
    store(dir.path(), &[dave]);
    let src = format!(
        r#"
[engine]
idle_sleep_us = 100
ring_frames = 8
[control]
socket = "{d}/ctl.sock"
[access]
backend = "memory"
address = "10.10.0.1/24"
[core]
backend = "memory"
address = "192.0.2.1/24"
[subscribers]
session_log = "{d}/sessions.jsonl"
{ppp}max_sessions_per_mac = 16
padi_burst_per_mac = 16
"#,
        d = dir.path().display(),
        ppp = config("chap"),
    );
    let mut gw = Gw::start_config(dir.path(), &src);
    let mut subs: Vec<Sub> = (1..=10u16)
        .map(|c| Sub::new(qinq(c), b"dave", b"d4ve"))
        .collect();
    for sub in &mut subs {
        let addr = sub.connect(&mut gw);
        gw.wait_open(&addr.to_string());
    }
    gw.signal_stop();
    wait("PADT to every subscriber at the stop", || {
        for f in gw.access.drain() {
            let h = ethernet::Frame::new_checked(&f[..])
                .unwrap()
                .header()
                .unwrap();
            let c = h.inner.map(|t| t.vid).unwrap();
            let sub = &mut subs[usize::from(c) - 1];
            for r in sub.input(&f) {
                let _ = gw.access.send(r);
            }
        }
        subs.iter().all(|s| s.padt).then_some(())
    });
    for s in &subs {
        assert_eq!(s.events, vec!["terminate gateway shutdown", "padt"]);
    }
    gw.join().unwrap();
}

#[test]
fn a_wrong_chap_secret_gets_failure_terminate_and_padt() {
    let dir = tempfile::tempdir().unwrap();
    let mut carol = Subscriber::new("carol");
    carol.chap_secret = Some(ChapSecret(b"right".to_vec()));
    store(dir.path(), &[carol]);
    let mut gw = Gw::start(dir.path(), &config("chap"));
    let mut sub = Sub::new(qinq(9), b"carol", b"wrong");
    assert!(gw.access.send(sub.padi()));
    wait("PADT", || {
        sub.pump(&mut gw);
        sub.padt.then_some(())
    });
    assert_eq!(sub.client.phase(), ClientPhase::Terminated);
    assert_eq!(sub.events, vec!["terminate authentication failed", "padt"]);
    let (_, s) = gw.ctl(&["show", "sessions"]);
    assert_eq!(s.as_array().map(Vec::len), Some(0), "{s}");
    let (_, c) = gw.ctl(&["show", "counters"]);
    assert_eq!(c["pppoe"]["ppp_auth_rejected"], 1);
    gw.stop();
}

/// FreeRADIUS users for PPP: a CHAP user with a fixed address and Framed-MTU, a PAP user
/// from the pool.
const RADIUS_USERS: &str = r#"
pppchap	Cleartext-Password := "s3cret"
	Framed-IP-Address = 10.10.0.105,
	Framed-MTU = 1400,
	Session-Timeout = 3600

ppppap	Cleartext-Password := "pw"
	Framed-Pool = "ppp"
"#;

fn radius_config(fr: &support::freeradius::FreeRadius, d: &std::path::Path, auth: &str) -> String {
    format!(
        r#"{pppoe}
[aaa]
auth = "radius"
nas_identifier = "tollgate-test"
[aaa.radius]
timeout_ms = 500
retries = 2
[[aaa.radius.auth_server]]
address = "{auth_addr}"
secret = "{secret}"
[[aaa.radius.acct_server]]
address = "{acct}"
secret = "{secret}"
"#,
        pppoe = config(auth),
        auth_addr = fr.auth,
        acct = fr.acct,
        secret = support::freeradius::SECRET,
    )
    .replace("{d}", &d.display().to_string())
}

fn unhex(s: &str) -> Vec<u8> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn attr<'a>(rec: &'a [(String, String)], name: &str) -> Option<&'a str> {
    rec.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
#[ignore = "needs FreeRADIUS: `make host-test` runs it"]
fn chap_and_pap_against_freeradius_with_ppp_accounting() {
    let fr = support::freeradius::FreeRadius::start_with_users(true, RADIUS_USERS);
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gw::start(dir.path(), &radius_config(&fr, dir.path(), "chap"));
    let mut sub = Sub::new(qinq(7), b"pppchap", b"s3cret");
    sub.line_id = Some(
        tollgate_control_core::pppoe::LineId {
            circuit_id: Some(b"an1 eth 1/1/1:7".to_vec()),
            remote_id: Some(b"cust7".to_vec()),
            ..Default::default()
        }
        .to_vendor_tag(),
    );
    let addr = sub.connect(&mut gw);
    assert_eq!(addr, Ipv4Addr::new(10, 10, 0, 105), "Framed-IP-Address");
    let v = gw.wait_open(&addr.to_string());
    assert_eq!(v["auth"], "chap/accepted");
    let (ok, _) = gw.ctl(&["session", "remove", &addr.to_string()]);
    assert!(ok);
    wait("PADT", || {
        sub.pump(&mut gw);
        sub.padt.then_some(())
    });
    let recs = wait("Start and Stop at FreeRADIUS", || {
        let d = fr.detail();
        (d.len() >= 2).then_some(d)
    });
    for r in &recs {
        assert_eq!(attr(r, "User-Name"), Some("pppchap"));
        assert_eq!(attr(r, "Framed-Protocol"), Some("PPP"), "{r:?}");
        assert_eq!(attr(r, "Service-Type"), Some("Framed-User"));
        assert_eq!(attr(r, "NAS-Port-Type"), Some("Ethernet"));
        assert_eq!(attr(r, "NAS-Port-Id"), Some("acc0.100.7"));
        assert_eq!(attr(r, "Calling-Station-Id"), Some("02:10:00:00:00:42"));
        // Octets in FreeRADIUS's dictionary: shown in hex.
        assert_eq!(
            attr(r, "ADSL-Agent-Circuit-Id").map(unhex).as_deref(),
            Some(&b"an1 eth 1/1/1:7"[..])
        );
        assert_eq!(
            attr(r, "ADSL-Agent-Remote-Id").map(unhex).as_deref(),
            Some(&b"cust7"[..])
        );
    }
    assert_eq!(attr(&recs[0], "Acct-Status-Type"), Some("Start"));
    assert_eq!(attr(&recs[1], "Acct-Status-Type"), Some("Stop"));
    gw.stop();

    // PAP, and a wrong CHAP response, against the same server.
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gw::start(dir.path(), &radius_config(&fr, dir.path(), "pap"));
    let mut sub = Sub::new(Vec::new(), b"ppppap", b"pw");
    let addr = sub.connect(&mut gw);
    assert_eq!(addr, Ipv4Addr::new(10, 10, 0, 100), "from Framed-Pool");
    gw.wait_open(&addr.to_string());
    gw.stop();
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gw::start(dir.path(), &radius_config(&fr, dir.path(), "chap"));
    let mut sub = Sub::new(Vec::new(), b"pppchap", b"wrong");
    assert!(gw.access.send(sub.padi()));
    wait("PADT after the reject", || {
        sub.pump(&mut gw);
        sub.padt.then_some(())
    });
    assert_eq!(sub.events, vec!["terminate authentication failed", "padt"]);
    gw.stop();
}
