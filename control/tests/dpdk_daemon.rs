//! `tollgate run` on DPDK ports (feature `dpdk`), as a process: an EAL that does not start
//! is a clear error and no panic; the daemon runs two workers on virtual devices, answers
//! `tollgate ctl`, and stops cleanly on SIGTERM; and, as root, a kernel on the far side
//! of a `net_tap` device, or of a veth pair through `net_af_packet`, in network
//! namespaces, resolves the gateway by ARP and pings it.

#![cfg(feature = "dpdk")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const EAL: &str =
    r#"["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "-l", "0"]"#;

fn config(dir: &Path, eal: &str, access: &str, core: &str) -> PathBuf {
    let socket = dir.join("ctl.sock");
    let src = format!(
        r#"
[engine]
workers = 2
idle_sleep_us = 100

[control]
socket = "{}"

[aaa]
store = "{d}/subscribers.db"
spool = "{d}/accounting.db"

[dpdk]
eal_args = {eal}
mbufs = 8191
mbuf_cache = 64
rx_descriptors = 256
tx_descriptors = 256

[access]
backend = "dpdk"
device = "{access}"
address = "10.10.0.1/24"

[core]
backend = "dpdk"
device = "{core}"
address = "192.0.2.1/24"
"#,
        socket.display(),
        d = dir.display(),
    );
    let path = dir.join("tollgate.toml");
    std::fs::write(&path, src).unwrap();
    path
}

fn tollgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
}

fn ctl(socket: &Path, what: &str) -> Value {
    let out = tollgate()
        .args(["ctl", "--json", "--socket"])
        .arg(socket)
        .args(["show", what])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A daemon process, stopped (SIGTERM) and checked when the test is done with it.
struct Daemon {
    child: Option<Child>,
    socket: PathBuf,
}

impl Daemon {
    fn start(cfg: &Path, netns: Option<&str>) -> Daemon {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_tollgate")]);
                c
            }
            None => tollgate(),
        };
        let child = cmd
            .args(["run", "--config"])
            .arg(cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let socket = cfg.with_file_name("ctl.sock");
        let mut d = Daemon {
            child: Some(child),
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&d.socket).is_err() {
            if let Some(status) = d.child.as_mut().unwrap().try_wait().unwrap() {
                let out = d.child.take().unwrap().wait_with_output().unwrap();
                panic!(
                    "daemon exited ({status}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(Instant::now() < deadline, "daemon did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    /// SIGTERM, then the exit status and output.
    fn stop(mut self) -> Output {
        let child = self.child.take().unwrap();
        // The process we started (`ip netns exec` execs the daemon in place).
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM");
        child.wait_with_output().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the daemon on `cfg`, which must fail at start with exit status 1 and no panic,
/// saying each of `expected`.
fn fails_clearly(cfg: &Path, expected: &[&str]) {
    let out = tollgate()
        .args(["run", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for e in expected {
        assert!(err.contains(e), "{e:?} not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_eal_that_does_not_start_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let eal = r#"["--no-such-eal-option"]"#;
    let cfg = config(dir.path(), eal, "net_null0", "net_null1");
    fails_clearly(
        &cfg,
        &[
            "starting DPDK (check dpdk.eal_args)",
            "DPDK's EAL did not start",
            "--no-such-eal-option",
        ],
    );
}

#[test]
fn a_missing_device_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), EAL, "0000:99:00.0", "net_null1");
    fails_clearly(
        &cfg,
        &[
            "access.device = \"0000:99:00.0\"",
            "DPDK has no port \"0000:99:00.0\"",
        ],
    );
}

#[test]
fn two_workers_run_on_virtual_devices_and_stop_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // net_null receives endless frames (here, of zeros: dropped as not for us).
    let cfg = config(dir.path(), EAL, "net_null0", "net_null1");
    let d = Daemon::start(&cfg, None);
    let ports = ctl(&d.socket, "ports");
    let text = ports.to_string();
    assert!(
        text.contains("\"dpdk\"") && text.contains("net_null0"),
        "{text}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let c = ctl(&d.socket, "counters");
    let rx = |side: &str| c["sides"][side]["rx_packets"].as_u64().unwrap();
    assert!(rx("access") > 0 && rx("core") > 0, "{c}");
    assert!(c["drops_total"].as_u64().unwrap() > 0, "{c}");
    let socket = d.socket.clone();
    let out = d.stop();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tollgate stopped"),
        "{}",
        stderr(&out)
    );
    assert!(!socket.exists(), "the socket is removed");
}

/// A network namespace, deleted when dropped.
struct Ns(String);

impl Ns {
    fn new(name: &str) -> Ns {
        let name = format!("{name}{}", std::process::id());
        ip(&["netns", "add", &name]);
        Ns(name)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let ok = Command::new("ip").args(args).status().unwrap().success();
    assert!(ok, "ip {args:?}");
}

/// Runs the daemon in `gw` with `device` as its access port, configures the kernel's end
/// with `kernel_end` (which returns the namespace to ping from), and pings the gateway.
fn ping_the_gateway(gw: &Ns, device: &str, kernel_end: impl FnOnce() -> String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), EAL, device, "net_ring0");
    let d = Daemon::start(&cfg, Some(&gw.0));
    let from = kernel_end();
    let ping = Command::new("ip")
        .args([
            "netns", "exec", &from, "ping", "-c", "3", "-i", "0.2", "-W", "2",
        ])
        .arg("10.10.0.1")
        .output()
        .unwrap();
    let c = ctl(&d.socket, "counters");
    assert!(
        ping.status.success(),
        "ping: {}\ncounters: {c}",
        String::from_utf8_lossy(&ping.stdout)
    );
    assert!(
        c["engine"]["replied"].as_u64().unwrap() >= 4,
        "ARP and 3 echoes: {c}"
    );
    let out = d.stop();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
#[ignore = "needs root (network namespaces): `make dpdk-test` runs it as root"]
fn a_kernel_behind_a_tap_device_pings_the_gateway() {
    assert_eq!(uid(), 0, "the net_tap test needs root (network namespace)");
    assert!(
        Path::new("/dev/net/tun").exists(),
        "the net_tap test needs /dev/net/tun"
    );
    // The tap interface appears in the daemon's namespace; the kernel pings from there.
    let gw = Ns::new("tgtap");
    ping_the_gateway(&gw, "net_tap0,iface=tgtap0", || {
        ip(&["-n", &gw.0, "addr", "add", "10.10.0.2/24", "dev", "tgtap0"]);
        ip(&["-n", &gw.0, "link", "set", "tgtap0", "up"]);
        gw.0.clone()
    });
}

#[test]
#[ignore = "needs root (network namespaces): `make dpdk-test` runs it as root"]
fn a_kernel_across_a_veth_pair_pings_the_gateway_through_af_packet() {
    assert_eq!(
        uid(),
        0,
        "the net_af_packet test needs root (network namespaces)"
    );
    let (gw, sub) = (Ns::new("tgafg"), Ns::new("tgafs"));
    let (a, b) = (
        format!("tga{}", std::process::id()),
        format!("tgb{}", std::process::id()),
    );
    ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
    ip(&["link", "set", &a, "netns", &gw.0]);
    ip(&["link", "set", &b, "netns", &sub.0]);
    ip(&["-n", &gw.0, "link", "set", &a, "up"]);
    ip(&["-n", &sub.0, "addr", "add", "10.10.0.2/24", "dev", &b]);
    ip(&["-n", &sub.0, "link", "set", &b, "up"]);
    ping_the_gateway(&gw, &format!("net_af_packet0,iface={a},qpairs=2"), || {
        sub.0.clone()
    });
}

fn uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(1)
}

/// `tollgate pktgen --backend dpdk` (net_af_packet devices) against `tollgate run`
/// (AF_PACKET) across two veth pairs in a namespace: every flow is learned, nothing is
/// lost, and what each side of the generator sent and received is exactly what the
/// gateway counted the other way.
#[test]
#[ignore = "needs root (network namespaces): `make dpdk-test` runs it as root"]
fn the_generator_on_dpdk_counts_what_the_gateway_counts() {
    assert_eq!(
        uid(),
        0,
        "the DPDK generator test needs root (network namespace)"
    );
    let ns = Ns::new("tgpg");
    let n = |args: &[&str]| {
        let mut v = vec!["-n", ns.0.as_str()];
        v.extend_from_slice(args);
        ip(&v);
    };
    // No IPv6: the kernel would send its own frames (router solicitations) on the links.
    for key in ["all", "default"] {
        let ok = Command::new("ip")
            .args(["netns", "exec", &ns.0, "sysctl", "-qw"])
            .arg(format!("net.ipv6.conf.{key}.disable_ipv6=1"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "sysctl disable_ipv6");
    }
    for (generator, gw, mac) in [
        ("gen-acc", "gw-acc", "02:00:00:00:70:01"),
        ("gen-core", "gw-core", "02:00:00:00:70:02"),
    ] {
        n(&["link", "add", generator, "type", "veth", "peer", "name", gw]);
        n(&["link", "set", gw, "address", mac]);
        for i in [generator, gw] {
            n(&["link", "set", i, "up"]);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut src = format!(
        r#"
[engine]
workers = 1
idle_sleep_us = 50

[control]
socket = "{}"

[access]
backend = "af_packet"
interface = "gw-acc"
address = "10.10.0.1/24"

[core]
backend = "af_packet"
interface = "gw-core"
address = "192.0.2.1/24"

[subscribers]
unknown = "drop"

[aaa]
store = "{d}/subscribers.db"
spool = "{d}/accounting.db"

[[service]]
name = "udp"
vip = "203.0.113.10"
protocol = "udp"
port = 5000
policy = "round_robin"
session_type = "connection"
"#,
        dir.path().join("ctl.sock").display(),
        d = dir.path().display()
    );
    for s in 21..=23 {
        src += &format!("[[service.server]]\naddress = \"192.0.2.{s}\"\n");
    }
    for i in 0..4 {
        src += &format!(
            "[[subscriber]]\nuser = \"gen{i}\"\naddress = \"10.10.0.{}\"\n",
            100 + i
        );
    }
    let cfg = dir.path().join("tollgate.toml");
    std::fs::write(&cfg, src).unwrap();
    let d = Daemon::start(&cfg, Some(&ns.0));
    let eal = format!(
        "--no-huge -m 256 --no-pci --no-shconf --no-telemetry -l 0 --file-prefix tgpg{} \
         --vdev=net_af_packet0,iface=gen-acc --vdev=net_af_packet1,iface=gen-core",
        std::process::id()
    );
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            env!("CARGO_BIN_EXE_tollgate"),
            "pktgen",
        ])
        .args(["--backend", "dpdk", "--eal", &eal])
        .args([
            "--access-if",
            "net_af_packet0",
            "--core-if",
            "net_af_packet1",
        ])
        .args(["--gateway-mac", "02:00:00:00:70:01,02:00:00:00:70:02"])
        .args(["--protocol", "udp", "--target", "203.0.113.10:5000"])
        .args([
            "--subscribers",
            "4",
            "--flows",
            "2",
            "--count",
            "1000",
            "--rate",
            "5k",
        ])
        .args(["--drain-ms", "300", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "pktgen: {}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = ctl(&d.socket, "counters");
    assert_eq!(r["flows"]["learned"], 8, "{r}");
    assert_eq!(r["sent"], 1000, "{r}");
    assert_eq!(r["lost"], 0, "{r}\ngateway: {c}");
    let (g, gw) = (&r["ports"], &c["sides"]);
    for side in ["access", "core"] {
        assert_eq!(g[side]["tx"], gw[side]["rx_packets"], "{side}: {r}\n{c}");
        assert_eq!(g[side]["rx"], gw[side]["tx_packets"], "{side}: {r}\n{c}");
    }
    let out = d.stop();
    assert!(out.status.success(), "{}", stderr(&out));
}
