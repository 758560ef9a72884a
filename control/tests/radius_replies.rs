//! Issue 12 item 14: what a login says when the RADIUS server's replies cannot be used.
//! A fake authentication server (a UDP socket in a thread) answers every Access-Request
//! with an Access-Challenge, or with a reply whose Message-Authenticator is wrong or
//! missing; the in-process gateway (memory ports) must refuse the login with that
//! reason, log it at WARN and count it, not call it "no answer" or "rejected".

mod support;

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use support::gateway::Gw;
use tollgate_control::radius::crypto::{sign_reply, verify_request};
use tollgate_control::radius::dict::std_attr;
use tollgate_control::radius::{Attribute, Code, Packet};

const SECRET: &[u8] = b"fake-secret";

/// How the fake server answers.
const CHALLENGE: u8 = 0;
const BAD_MA: u8 = 1;
const NO_MA: u8 = 2;

/// A RADIUS authentication server that answers every request as `mode` says.
fn fake_server(mode: Arc<AtomicU8>) -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let req = verify_request(&buf[..n], SECRET, true).unwrap();
            let reply = match mode.load(Ordering::Relaxed) {
                CHALLENGE => {
                    let mut r = Packet::new(Code::AccessChallenge, req.identifier);
                    r.push(Attribute::text(std_attr::REPLY_MESSAGE, "enter your OTP"));
                    sign_reply(&r, &req.authenticator, SECRET).unwrap()
                }
                m => {
                    // A right Response Authenticator over a Message-Authenticator that is
                    // wrong (or none at all).
                    let mut r = Packet::new(Code::AccessAccept, req.identifier);
                    if m == BAD_MA {
                        r.push(Attribute::octets(
                            std_attr::MESSAGE_AUTHENTICATOR,
                            [0xaa; 16],
                        ));
                    }
                    r.authenticator = req.authenticator;
                    let mut b = r.encode().unwrap();
                    use md5::Digest;
                    let mut h = md5::Md5::new();
                    h.update(&b);
                    h.update(SECRET);
                    let auth: [u8; 16] = h.finalize().into();
                    b[4..20].copy_from_slice(&auth);
                    b
                }
            };
            let _ = s.send_to(&reply, from);
        }
    });
    addr
}

/// The log lines of this test binary (every test shares the one global subscriber).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn install() -> Logs {
        let logs = Logs::default();
        let w = logs.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || w.clone())
            .init();
        logs
    }

    fn warnings(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains("WARN"))
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn unusable_radius_replies_are_named_warned_and_counted() {
    let logs = Logs::install();
    let mode = Arc::new(AtomicU8::new(CHALLENGE));
    let server = fake_server(mode.clone());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = std::str::from_utf8(SECRET).unwrap();
    let gw = Gw::start(
        d,
        &format!(
            r#"
[aaa]
auth = "radius"
store = "{d}/subscribers.db"
spool = "{d}/accounting.db"
[aaa.radius]
timeout_ms = 300
retries = 1
hold_down_s = 0
[[aaa.radius.auth_server]]
address = "{server}"
secret = "{secret}"
"#,
            d = d.display()
        ),
    );
    let login = || {
        let (ok, e) = gw.ctl(&["session", "login", "--user", "bob", "--password", "pw"]);
        assert!(!ok, "{e}");
        e.as_str().unwrap().to_string()
    };

    // An Access-Challenge is neither a rejection nor silence.
    let e = login();
    assert!(e.contains("Access-Challenge"), "{e}");
    assert!(!e.contains("reject"), "{e}");
    let (_, a) = gw.ctl(&["show", "accounting"]);
    assert_eq!(a["radius_auth"]["challenges"], 1, "{a}");
    let (_, l) = gw.ctl(&["show", "logins"]);
    assert_eq!(
        (l["rejected"].as_u64(), l["unavailable"].as_u64()),
        (Some(0), Some(1)),
        "{l}"
    );

    // A wrong Message-Authenticator: both tries dropped, and the login says why.
    mode.store(BAD_MA, Ordering::Relaxed);
    let e = login();
    assert!(!e.contains("no answer"), "{e}");
    assert!(
        e.contains("2 reply(ies) dropped, the last one: Message-Authenticator does not match"),
        "{e}"
    );
    // None at all, where RFC 3579 requires one.
    mode.store(NO_MA, Ordering::Relaxed);
    let e = login();
    assert!(e.contains("the last one: no Message-Authenticator"), "{e}");
    let (_, a) = gw.ctl(&["show", "accounting"]);
    let dropped = &a["radius_auth"]["replies_dropped"];
    assert_eq!(dropped["bad_message_authenticator"], 2, "{a}");
    assert_eq!(dropped["missing_message_authenticator"], 2, "{a}");

    let warnings = logs.warnings();
    let has = |what: &str| warnings.iter().any(|l| l.contains(what));
    assert!(has("Access-Challenge"), "{warnings:#?}");
    assert!(
        has("RADIUS reply dropped") && has("reason=Message-Authenticator does not match"),
        "{warnings:#?}"
    );
    assert!(has("reason=no Message-Authenticator"), "{warnings:#?}");
    assert!(has("RADIUS authentication failed"), "{warnings:#?}");
    gw.stop();
}
