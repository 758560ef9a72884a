//! An in-process gateway on memory ports for integration tests and benchmarks: the test
//! holds the far ends of the ports and sends real frames; the control socket is driven
//! with the `tollgate` binary.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_control::config::Config;
use tollgate_control::engine;
use tollgate_dataplane::MacAddr;
use tollgate_dataplane::port::memory::{MemoryPeer, MemoryPort};
use tollgate_testkit::frame::udp_ports;
use tollgate_testkit::lab::*;

pub struct Gw {
    pub socket: PathBuf,
    pub dir: PathBuf,
    pub access: MemoryPeer,
    pub core: MemoryPeer,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Gw {
    /// A one-worker gateway with `extra` config appended; files live in `dir`.
    pub fn start(dir: &Path, extra: &str) -> Gw {
        let src = format!(
            r#"
[engine]
idle_sleep_us = 100
[control]
socket = "{d}/ctl.sock"
[access]
backend = "memory"
address = "10.10.0.1/24"
[core]
backend = "memory"
address = "192.0.2.1/24"
[[neighbor]]
address = "192.0.2.10"
mac = "02:20:00:00:00:10"
[subscribers]
unknown = "punt"
session_log = "{d}/sessions.jsonl"
{extra}
"#,
            d = dir.display()
        );
        Gw::start_config(dir, &src)
    }

    /// A gateway on a complete config (its control socket must be `dir/ctl.sock`).
    pub fn start_config(dir: &Path, src: &str) -> Gw {
        let socket = dir.join("ctl.sock");
        let mut cfg = Config::parse(src, "aaa-test.toml").unwrap();
        // The test's own files, not the shared /var/lib/tollgate defaults: one daemon
        // per spool, and parallel tests must not share one.
        let defaults = tollgate_control::aaa_config::AaaConfig::default();
        if cfg.aaa.spool == defaults.spool {
            cfg.aaa.spool = dir.join("accounting.db");
        }
        if cfg.aaa.store == defaults.store {
            cfg.aaa.store = dir.join("subscribers.db");
        }
        let (a, access) = MemoryPort::with_peer(1024);
        let (c, core) = MemoryPort::with_peer(1024);
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || {
            engine::run_on_memory_ports(&cfg, "aaa-test.toml", vec![[a, c]], s2)
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Gw {
            socket,
            dir: dir.to_path_buf(),
            access,
            core,
            stop,
            thread: Some(thread),
        }
    }

    pub fn ctl(&self, args: &[&str]) -> (bool, Value) {
        ctl(&self.socket, args)
    }

    /// Waits until `show session KEY` is open.
    pub fn wait_open(&self, key: &str) -> Value {
        wait(&format!("session {key} open"), || {
            let (_, v) = self.ctl(&["show", "session", key]);
            (v["state"] == "open").then_some(v)
        })
    }

    /// Sends `n` frames each way and waits until all came out the other side.
    pub fn traffic(
        &mut self,
        src: Ipv4Addr,
        mac: MacAddr,
        up: (usize, usize),
        down: (usize, usize),
    ) {
        for i in 0..up.0 {
            let f = udp_ports(
                mac,
                ACC_MAC,
                src,
                40000,
                SRV,
                5001,
                64,
                &vec![i as u8; up.1],
            );
            assert!(self.access.send(f));
        }
        for i in 0..down.0 {
            let f = udp_ports(
                SRV_MAC,
                CORE_MAC,
                SRV,
                5001,
                src,
                40000,
                64,
                &vec![i as u8; down.1],
            );
            assert!(self.core.send(f));
        }
        let (mut got_up, mut got_down) = (0, 0);
        wait("traffic through", || {
            got_up += self.core.drain().len();
            got_down += self.access.drain().len();
            (got_up == up.0 && got_down == down.0).then_some(())
        });
    }

    pub fn session_log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("sessions.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap().unwrap();
    }

    /// Asks the daemon to stop (as SIGTERM does) without waiting for it.
    pub fn signal_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// True once the daemon's thread has ended.
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for the daemon's thread to end.
    pub fn join(mut self) -> anyhow::Result<()> {
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn ctl(socket: &Path, args: &[&str]) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        let s = String::from_utf8_lossy(&out.stdout);
        (
            true,
            serde_json::from_str(&s).unwrap_or(Value::String(s.into())),
        )
    } else {
        (
            false,
            Value::String(String::from_utf8_lossy(&out.stderr).into()),
        )
    }
}

pub fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Gw {
    pub fn session_log_at(d: &Path) -> Vec<Value> {
        std::fs::read_to_string(d.join("sessions.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}
