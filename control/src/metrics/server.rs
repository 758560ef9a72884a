//! The metrics endpoint: one thread, HTTP/1.1 with `Connection: close`, `GET /metrics`
//! (and HEAD) answered from the [`Snapshot`], 404 for other paths, 405 for other
//! methods. A slow or silent client is cut off after a short read timeout, so one bad
//! scraper cannot hold the endpoint.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{CONTENT_TYPE, Snapshot};

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The running server; stops and joins its thread on drop.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    scrapes: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `snapshot`.
    pub fn start(addr: SocketAddr, snapshot: Snapshot) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let (s, c) = (stop.clone(), scrapes.clone());
        let thread = std::thread::Builder::new()
            .name("tg-metrics".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(stream) = conn
                        && serve(stream, &snapshot).unwrap_or(false)
                    {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })?;
        Ok(MetricsServer {
            addr,
            stop,
            scrapes,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Successful scrapes so far.
    pub fn scrapes(&self) -> u64 {
        self.scrapes.load(Ordering::Relaxed)
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one connection; true if it was a successful scrape.
fn serve(mut s: TcpStream, snapshot: &Snapshot) -> io::Result<bool> {
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    s.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 16 * 1024 {
            respond(
                &mut s,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request too large\n",
                true,
            )?;
            return Ok(false);
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let body = snapshot.get();
            respond(
                &mut s,
                "200 OK",
                CONTENT_TYPE,
                body.as_bytes(),
                method == "GET",
            )?;
            Ok(true)
        }
        ("GET" | "HEAD", _) => {
            respond(
                &mut s,
                "404 Not Found",
                "text/plain",
                b"not found: try /metrics\n",
                method == "GET",
            )?;
            Ok(false)
        }
        _ => {
            respond(
                &mut s,
                "405 Method Not Allowed",
                "text/plain",
                b"GET /metrics\n",
                true,
            )?;
            Ok(false)
        }
    }
}

fn respond(
    s: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &[u8],
    with_body: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    if with_body {
        s.write_all(body)?;
    }
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Registry;

    fn get(addr: SocketAddr, req: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_metrics_and_404() {
        let snap = Snapshot::new();
        let srv = MetricsServer::start("127.0.0.1:0".parse().unwrap(), snap.clone()).unwrap();
        let mut r = Registry::new();
        r.counter("tollgate_test_total", "A test.")
            .value(&[("k", "v")], 42);
        snap.publish(r.render());
        let resp = get(srv.local_addr(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(
            resp.contains("Content-Type: text/plain; version=0.0.4"),
            "{resp}"
        );
        assert!(
            resp.ends_with("tollgate_test_total{k=\"v\"} 42\n"),
            "{resp}"
        );
        let len: usize = resp
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(len, resp.split("\r\n\r\n").nth(1).unwrap().len());
        // The next scrape sees the next rendering.
        snap.publish("x 2\n".into());
        assert!(
            get(srv.local_addr(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n").ends_with("\r\n\r\nx 2\n")
        );
        let nf = get(srv.local_addr(), "GET / HTTP/1.1\r\n\r\n");
        assert!(nf.starts_with("HTTP/1.1 404 Not Found"), "{nf}");
        let na = get(srv.local_addr(), "POST /metrics HTTP/1.1\r\n\r\n");
        assert!(na.starts_with("HTTP/1.1 405"), "{na}");
        let head = get(srv.local_addr(), "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        // The server counts a scrape after it closed the connection, which the client
        // may see first on a loaded machine: wait for the count, do not race it.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while srv.scrapes() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(srv.scrapes(), 3);
    }

    #[test]
    fn a_silent_client_does_not_block_others_for_long() {
        let snap = Snapshot::new();
        snap.publish("y 1\n".into());
        let srv = MetricsServer::start("127.0.0.1:0".parse().unwrap(), snap).unwrap();
        let _silent = TcpStream::connect(srv.local_addr()).unwrap();
        let t = std::time::Instant::now();
        let resp = get(srv.local_addr(), "GET /metrics HTTP/1.1\r\n\r\n");
        assert!(resp.ends_with("y 1\n"));
        assert!(t.elapsed() < READ_TIMEOUT + Duration::from_secs(1));
    }
}
