//! A real FreeRADIUS 3.x for tests: a complete configuration written into a temporary
//! directory (radiusd.conf with the clients, a `users` file with test subscribers
//! carrying standard and Tollgate vendor attributes, the `detail` module writing
//! accounting to a known file, our dictionary included), started in the foreground on
//! free loopback ports, stopped on drop. It never touches /etc/freeradius or the
//! default ports, so it runs beside a system daemon and beside other tests.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared secret of the loopback client.
pub const SECRET: &str = "testing123";
/// The binary (Debian: freeradius; elsewhere radiusd).
const BINARIES: [&str; 2] = ["/usr/sbin/freeradius", "/usr/sbin/radiusd"];

/// Test subscribers: `alice` has every attribute, `bob` only a password, `bench` is for
/// the rate benchmark, and a MAC for first-packet logins (MAC authentication: the
/// password is the MAC).
pub const USERS: &str = r#"
alice	Cleartext-Password := "wonderland"
	Session-Timeout = 3600,
	Idle-Timeout = 300,
	Framed-IP-Address = 10.10.0.50,
	Acct-Interim-Interval = 60,
	Class = "gold-class",
	Tollgate-Volume-Limit = 5368709120,
	Tollgate-Bandwidth-Up = 10000000,
	Tollgate-Bandwidth-Down = 50000000,
	Tollgate-Allowed-Service += "web",
	Tollgate-Allowed-Service += "mail",
	Tollgate-Max-Logins = 2,
	Tollgate-Login-Victim = Order,
	Tollgate-Rate-Ratio = 60,
	Tollgate-Rate-Window = 10,
	Tollgate-App-Timeout = 120

bob	Cleartext-Password := "builder"

bench	Cleartext-Password := "bench"
	Session-Timeout = 60

"02:10:00:00:00:11"	Cleartext-Password := "02:10:00:00:00:11"
	Acct-Interim-Interval = 10,
	Class = "mac-class",
	Tollgate-Bandwidth-Down = 50000000,
	Tollgate-Allowed-Service += "web"
"#;

/// Finds the FreeRADIUS binary.
pub fn binary() -> Option<PathBuf> {
    BINARIES.iter().map(PathBuf::from).find(|p| p.exists())
}

/// A free UDP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// A running FreeRADIUS.
pub struct FreeRadius {
    dir: tempfile::TempDir,
    /// Access-Request port.
    pub auth: SocketAddr,
    /// Accounting-Request port.
    pub acct: SocketAddr,
    child: Option<Child>,
    debug: bool,
}

impl FreeRadius {
    /// Writes the configuration and starts the server (debug mode `-X`: one thread,
    /// full log in `radiusd.out`). Panics when FreeRADIUS is not installed: the tests
    /// that use it are `#[ignore]`d, so running one means it was asked for.
    pub fn start() -> FreeRadius {
        FreeRadius::start_with(true)
    }

    /// As [`Self::start`]; `debug` false runs it threaded with a quiet log (benchmarks).
    pub fn start_with(debug: bool) -> FreeRadius {
        FreeRadius::start_with_users(debug, USERS)
    }

    /// As [`Self::start_with`], with this `users` file instead of [`USERS`].
    pub fn start_with_users(debug: bool, users: &str) -> FreeRadius {
        assert!(
            binary().is_some(),
            "FreeRADIUS is not installed (apt-get install freeradius freeradius-utils, or `make deps` as root)"
        );
        let dir = tempfile::Builder::new()
            .prefix("tollgate-freeradius-")
            .tempdir()
            .expect("temp dir");
        let auth = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let acct = SocketAddr::from(([127, 0, 0, 1], free_port()));
        write_config(dir.path(), auth, acct, users);
        let mut fr = FreeRadius {
            dir,
            auth,
            acct,
            child: None,
            debug,
        };
        fr.run();
        fr
    }

    /// The configuration directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The accounting detail file.
    pub fn detail_path(&self) -> PathBuf {
        self.dir.path().join("detail")
    }

    /// The detail file's records: each a list of (attribute, value) with quotes removed.
    pub fn detail(&self) -> Vec<Vec<(String, String)>> {
        let text = std::fs::read_to_string(self.detail_path()).unwrap_or_default();
        let mut out = Vec::new();
        let mut cur: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if line.trim().is_empty() {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            if !line.starts_with('\t') {
                continue; // the timestamp line starting a record
            }
            if let Some((k, v)) = line.trim().split_once(" = ") {
                cur.push((k.to_string(), v.trim_matches('"').to_string()));
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("radiusd.out")).unwrap_or_default()
    }

    /// Starts (again) on the same ports and files.
    pub fn run(&mut self) {
        if self.child.is_some() {
            return;
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("radiusd.out"))
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let bin = binary().expect("binary");
        let mut cmd = Command::new(bin);
        if self.debug {
            cmd.args(["-X", "-d"]);
        } else {
            cmd.args(["-f", "-l", "stdout", "-d"]);
        }
        let child = cmd
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start freeradius");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = self.log().matches("Ready to process requests").count();
        let before = seen;
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("freeradius exited ({status}):\n{}", self.log());
            }
            if !self.debug {
                // The quiet log does not announce readiness: ask with Status-Server.
                if status_server(self.auth) {
                    return;
                }
            } else {
                seen = self.log().matches("Ready to process requests").count();
                if seen > before {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("freeradius did not become ready:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL), keeping the directory.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        self.stop();
    }
}

/// True if a Status-Server to `auth` is answered (FreeRADIUS readiness without -X).
fn status_server(auth: SocketAddr) -> bool {
    use tollgate_control_core::radius::{Code, Packet, crypto};
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    let mut p = Packet::new(Code::StatusServer, 1);
    p.authenticator = [7; 16];
    let Ok(bytes) = crypto::sign_request(&p, SECRET.as_bytes()) else {
        return false;
    };
    if sock.send_to(&bytes, auth).is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    sock.recv_from(&mut buf).is_ok()
}

fn write_config(dir: &Path, auth: SocketAddr, acct: SocketAddr, users: &str) {
    let d = dir.display();
    let dictionary = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/dictionary.tollgate")
        .canonicalize()
        .expect("config/dictionary.tollgate");
    for sub in ["log", "run", "acct"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    std::fs::write(
        dir.join("dictionary"),
        format!("$INCLUDE {}\n", dictionary.display()),
    )
    .expect("dictionary");
    std::fs::write(dir.join("users"), users).expect("users");
    let conf = format!(
        r#"
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {d}/log
raddbdir = {d}
radacctdir = {d}/acct
name = freeradius
confdir = {d}
modconfdir = {d}/mods-config
certdir = {d}/certs
cadir = {d}/certs
run_dir = {d}/run
db_dir = {d}
libdir = /usr/lib/freeradius
pidfile = {d}/run/freeradius.pid
correct_escapes = true
max_request_time = 30
cleanup_delay = 5
max_requests = 65536
hostname_lookups = no

log {{
	destination = stdout
	colourise = no
	auth = no
}}

security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}}

proxy_requests = no

thread pool {{
	start_servers = 4
	max_servers = 8
	min_spare_servers = 2
	max_spare_servers = 8
	max_requests_per_server = 0
	max_queue_size = 65536
}}

client loopback {{
	ipaddr = 127.0.0.1
	secret = {SECRET}
	require_message_authenticator = no
	nas_type = other
}}

modules {{
	pap {{
		normalise = yes
	}}
	chap {{
	}}
	files {{
		filename = {d}/users
	}}
	detail {{
		filename = {d}/detail
		escape_filenames = no
		permissions = 0600
		header = "%t"
		locking = no
	}}
}}

server default {{
	listen {{
		type = auth
		ipaddr = 127.0.0.1
		port = {auth_port}
	}}
	listen {{
		type = acct
		ipaddr = 127.0.0.1
		port = {acct_port}
	}}
	authorize {{
		chap
		files
		pap
	}}
	authenticate {{
		Auth-Type PAP {{
			pap
		}}
		Auth-Type CHAP {{
			chap
		}}
	}}
	preacct {{
	}}
	accounting {{
		detail
		update reply {{
			Message-Authenticator := 0x00
		}}
	}}
	post-auth {{
		update reply {{
			Message-Authenticator := 0x00
		}}
		Post-Auth-Type REJECT {{
			update reply {{
				Message-Authenticator := 0x00
			}}
		}}
	}}
}}
"#,
        auth_port = auth.port(),
        acct_port = acct.port(),
    );
    std::fs::write(dir.join("radiusd.conf"), conf).expect("radiusd.conf");
}
