//! The probes, as non-blocking state machines pumped from the control loop: TCP connect
//! (a non-blocking `connect`, then the socket's pending error or peer address tells the
//! outcome), HTTP GET over that connection (status line only: 2xx/3xx passes), and ICMP
//! echo through an unprivileged `SOCK_DGRAM` ICMP socket (`net.ipv4.ping_group_range`),
//! or a raw socket when that is refused and we have CAP_NET_RAW. No thread per probe;
//! [`Prober::poll`] never blocks.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};
use tollgate_dataplane::time::Instant;

use tollgate_control_core::health::{CheckKind, Probe, ProbeResult, TargetId};

/// A finished probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Which target.
    pub target: TargetId,
    /// Which check.
    pub seq: u64,
    /// How it went.
    pub result: ProbeResult,
    /// The load an HTTP check's answer reported in an `X-Load` header (percent; the
    /// lowest-CPU-load policy balances on it).
    pub load: Option<u32>,
}

/// An HTTP probe's progress. `Sending` with offset `usize::MAX` is still connecting.
#[derive(Debug)]
enum Http {
    Sending(Vec<u8>, usize),
    Reading(Vec<u8>),
}

#[derive(Debug)]
enum Work {
    Tcp(TcpStream),
    Http(TcpStream, Http),
    Icmp { seq: u16, token: [u8; 8] },
    Done(ProbeResult),
}

#[derive(Debug)]
struct Running {
    target: TargetId,
    seq: u64,
    addr: IpAddr,
    started: Instant,
    deadline: Instant,
    work: Work,
    load: Option<u32>,
}

#[derive(Debug)]
struct IcmpSocket {
    socket: UdpSocket,
    /// Raw sockets see the IP header and every ICMP packet; datagram ones neither.
    raw: bool,
    ident: u16,
}

/// Runs probes.
#[derive(Debug, Default)]
pub struct Prober {
    running: Vec<Running>,
    icmp: Option<IcmpSocket>,
    icmp_seq: u16,
    tokens: u64,
}

/// Opens a socket and starts a non-blocking connect.
fn connect_nonblocking(addr: SocketAddr) -> io::Result<TcpStream> {
    // socket2 opens it close-on-exec; non-blocking from the start, so connect returns
    // at once.
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    match socket.connect(&addr.into()) {
        Ok(()) => Ok(socket.into()),
        Err(e) if rustix::io::Errno::from_io_error(&e) == Some(rustix::io::Errno::INPROGRESS) => {
            Ok(socket.into())
        }
        Err(e) => Err(e),
    }
}

/// `Some(Ok)` connected, `Some(Err)` failed, `None` still connecting.
fn connect_progress(s: &TcpStream) -> Option<io::Result<()>> {
    match s.take_error() {
        Ok(Some(e)) => return Some(Err(e)),
        Err(e) => return Some(Err(e)),
        Ok(None) => {}
    }
    match s.peer_addr() {
        Ok(_) => Some(Ok(())),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
        Err(e) => Some(Err(e)),
    }
}

/// An ICMP echo socket: a non-blocking, close-on-exec ICMP socket of type `ty`.
fn icmp_socket(ty: Type) -> io::Result<Socket> {
    Socket::new(Domain::IPV4, ty.nonblocking(), Some(Protocol::ICMPV4))
}

fn open_icmp() -> io::Result<IcmpSocket> {
    let (socket, raw) = match icmp_socket(Type::DGRAM) {
        Ok(s) => (s, false),
        Err(dgram) => match icmp_socket(Type::RAW) {
            Ok(s) => (s, true),
            Err(raw) => {
                return Err(io::Error::new(
                    raw.kind(),
                    format!(
                        "no ICMP socket: unprivileged ({dgram}; see net.ipv4.ping_group_range) nor raw ({raw}; needs CAP_NET_RAW)"
                    ),
                ));
            }
        },
    };
    // A datagram-like socket: UdpSocket's send_to/recv_from are the calls it needs.
    let socket = UdpSocket::from(socket);
    let ident = (std::process::id() as u16) ^ 0x7467;
    Ok(IcmpSocket { socket, raw, ident })
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Prober {
    /// An idle prober.
    pub fn new() -> Prober {
        Prober::default()
    }

    /// Probes running.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Starts a probe at `now`.
    pub fn start(&mut self, now: Instant, p: Probe) {
        let work = match &p.kind {
            CheckKind::Tcp { port } => match connect_nonblocking(SocketAddr::new(p.addr, *port)) {
                Ok(s) => Work::Tcp(s),
                Err(e) => Work::Done(ProbeResult::Failed(format!("connect: {e}"))),
            },
            CheckKind::Http { port, path, host } => {
                match connect_nonblocking(SocketAddr::new(p.addr, *port)) {
                    Ok(s) => {
                        let host = host.clone().unwrap_or_else(|| match p.addr {
                            IpAddr::V4(a) => format!("{a}:{port}"),
                            IpAddr::V6(a) => format!("[{a}]:{port}"),
                        });
                        let req = format!(
                            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tollgate-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
                        );
                        Work::Http(s, Http::Sending(req.into_bytes(), usize::MAX))
                    }
                    Err(e) => Work::Done(ProbeResult::Failed(format!("connect: {e}"))),
                }
            }
            CheckKind::Icmp => self.send_echo(p.addr),
        };
        self.running.push(Running {
            target: p.target,
            seq: p.seq,
            addr: p.addr,
            started: now,
            deadline: now + p.timeout,
            work,
            load: None,
        });
    }

    fn send_echo(&mut self, addr: IpAddr) -> Work {
        let IpAddr::V4(v4) = addr else {
            return Work::Done(ProbeResult::Failed("ICMP echo is IPv4 only".into()));
        };
        if self.icmp.is_none() {
            match open_icmp() {
                Ok(s) => self.icmp = Some(s),
                Err(e) => return Work::Done(ProbeResult::Failed(e.to_string())),
            }
        }
        let Some(icmp) = self.icmp.as_ref() else {
            return Work::Done(ProbeResult::Failed("no ICMP socket".into()));
        };
        self.icmp_seq = self.icmp_seq.wrapping_add(1);
        self.tokens = self.tokens.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let token = self.tokens.to_be_bytes();
        let mut pkt = [0u8; 16];
        pkt[0] = 8; // echo request
        pkt[4..6].copy_from_slice(&icmp.ident.to_be_bytes());
        pkt[6..8].copy_from_slice(&self.icmp_seq.to_be_bytes());
        pkt[8..16].copy_from_slice(&token);
        let c = checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
        match icmp
            .socket
            .send_to(&pkt, SocketAddr::new(IpAddr::V4(v4), 0))
        {
            Ok(_) => Work::Icmp {
                seq: self.icmp_seq,
                token,
            },
            Err(e) => Work::Done(ProbeResult::Failed(format!("ICMP send: {e}"))),
        }
    }

    fn read_echo_replies(&mut self) {
        let Some(icmp) = self.icmp.as_ref() else {
            return;
        };
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = match icmp.socket.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let mut data = &buf[..n];
            if icmp.raw {
                let ihl = data.first().map_or(0, |b| ((b & 0x0f) as usize) * 4);
                if ihl < 20 || data.len() < ihl {
                    continue;
                }
                data = &data[ihl..];
            }
            if data.len() < 16 || data[0] != 0 {
                continue; // not an echo reply (a raw socket sees our requests too)
            }
            let ident = u16::from_be_bytes([data[4], data[5]]);
            if icmp.raw && ident != icmp.ident {
                continue;
            }
            let seq = u16::from_be_bytes([data[6], data[7]]);
            let token = &data[8..16];
            for r in &mut self.running {
                if let Work::Icmp { seq: s, token: t } = &r.work
                    && *s == seq
                    && t == token
                    && r.addr == from.ip()
                {
                    r.work = Work::Done(ProbeResult::Passed(Default::default()));
                }
            }
        }
    }

    /// Advances every probe; returns those finished (passed, failed or timed out).
    pub fn poll(&mut self, now: Instant) -> Vec<Outcome> {
        self.read_echo_replies();
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.running.len() {
            let r = &mut self.running[i];
            advance(r);
            let elapsed = now.since(r.started);
            let result = match &r.work {
                Work::Done(ProbeResult::Passed(_)) => Some(ProbeResult::Passed(elapsed)),
                Work::Done(f) => Some(f.clone()),
                _ if now >= r.deadline => Some(ProbeResult::Failed(format!(
                    "no answer in {} ms",
                    r.deadline.since(r.started).as_millis()
                ))),
                _ => None,
            };
            if let Some(result) = result {
                let r = self.running.swap_remove(i);
                out.push(Outcome {
                    target: r.target,
                    seq: r.seq,
                    result,
                    load: r.load,
                });
            } else {
                i += 1;
            }
        }
        out
    }
}

/// Moves a TCP or HTTP probe as far as it can go without blocking.
fn advance(r: &mut Running) {
    let next = match &mut r.work {
        Work::Tcp(s) => match connect_progress(s) {
            None => return,
            Some(Ok(())) => Work::Done(ProbeResult::Passed(Default::default())),
            Some(Err(e)) => Work::Done(ProbeResult::Failed(format!("connect: {e}"))),
        },
        Work::Http(s, state) => loop {
            match state {
                Http::Sending(req, off) => {
                    if *off == usize::MAX {
                        match connect_progress(s) {
                            None => return,
                            Some(Err(e)) => {
                                break Work::Done(ProbeResult::Failed(format!("connect: {e}")));
                            }
                            Some(Ok(())) => *off = 0,
                        }
                    }
                    match s.write(&req[*off..]) {
                        Ok(n) => {
                            *off += n;
                            if *off >= req.len() {
                                *state = Http::Reading(Vec::new());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) => break Work::Done(ProbeResult::Failed(format!("send: {e}"))),
                    }
                }
                Http::Reading(buf) => {
                    let mut chunk = [0u8; 512];
                    match s.read(&mut chunk) {
                        // Closed: judge by the status line if it came.
                        Ok(0) => match buf.windows(2).position(|w| w == b"\r\n") {
                            Some(end) => {
                                r.load = x_load(&buf[end..]);
                                break Work::Done(status_line(&buf[..end]));
                            }
                            None => {
                                break Work::Done(ProbeResult::Failed(
                                    "connection closed before a status line".into(),
                                ));
                            }
                        },
                        Ok(n) => {
                            buf.extend_from_slice(&chunk[..n]);
                            // The status line and the headers (for X-Load).
                            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                let line = buf.windows(2).position(|w| w == b"\r\n").unwrap_or(end);
                                r.load = x_load(&buf[line..end]);
                                break Work::Done(status_line(&buf[..line]));
                            }
                            if buf.len() > 4096 {
                                break Work::Done(ProbeResult::Failed(
                                    "status line and headers longer than 4 KiB".into(),
                                ));
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) => break Work::Done(ProbeResult::Failed(format!("receive: {e}"))),
                    }
                }
            }
        },
        _ => return,
    };
    r.work = next;
}

/// The `X-Load: N` header (percent, 0..=100) among `headers`, if any.
fn x_load(headers: &[u8]) -> Option<u32> {
    String::from_utf8_lossy(headers).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("x-load")
            .then(|| v.trim().parse::<u32>().ok())
            .flatten()
            .filter(|n| *n <= 100)
    })
}

/// `HTTP/1.x NNN reason`: 2xx and 3xx pass.
fn status_line(line: &[u8]) -> ProbeResult {
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_whitespace();
    let (Some(version), Some(code)) = (words.next(), words.next()) else {
        return ProbeResult::Failed(format!("bad status line {text:?}"));
    };
    if !version.starts_with("HTTP/") {
        return ProbeResult::Failed(format!("bad status line {text:?}"));
    }
    match code.parse::<u16>() {
        Ok(c) if (200..400).contains(&c) => ProbeResult::Passed(Default::default()),
        Ok(c) => ProbeResult::Failed(format!("HTTP status {c}")),
        Err(_) => ProbeResult::Failed(format!("bad status line {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Duration;

    const LOOPBACK: std::net::Ipv4Addr = std::net::Ipv4Addr::LOCALHOST;

    fn probe(kind: CheckKind, timeout_ms: u64) -> Probe {
        Probe {
            target: 0,
            seq: 1,
            addr: IpAddr::V4(LOOPBACK),
            kind,
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    fn run(p: Probe) -> ProbeResult {
        let mut pr = Prober::new();
        pr.start(Instant::now(), p);
        loop {
            let out = pr.poll(Instant::now());
            if let Some(o) = out.into_iter().next() {
                return o.result;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn tcp_connect_up_and_refused() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(matches!(
            run(probe(CheckKind::Tcp { port }, 1000)),
            ProbeResult::Passed(_)
        ));
        drop(l);
        match run(probe(CheckKind::Tcp { port }, 1000)) {
            ProbeResult::Failed(why) => assert!(why.contains("refused"), "{why}"),
            r => panic!("{r:?}"),
        }
    }

    /// A one-shot HTTP responder: answers each connection with `status`, or never.
    fn responder(status: Option<u16>) -> (u16, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = vec![0u8; 1024];
            let n = s.read(&mut req).unwrap_or(0);
            match status {
                Some(code) => {
                    let _ = write!(s, "HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
                }
                None => std::thread::sleep(Duration::from_millis(400)),
            }
            String::from_utf8_lossy(&req[..n]).into_owned()
        });
        (port, h)
    }

    #[test]
    fn http_get_status() {
        let (port, h) = responder(Some(204));
        let kind = CheckKind::Http {
            port,
            path: "/health".into(),
            host: Some("pgw1.example".into()),
        };
        assert!(matches!(run(probe(kind, 2000)), ProbeResult::Passed(_)));
        let req = h.join().unwrap();
        assert!(req.starts_with("GET /health HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("Host: pgw1.example\r\n"), "{req}");

        let (port, h) = responder(Some(503));
        let kind = CheckKind::Http {
            port,
            path: "/".into(),
            host: None,
        };
        assert_eq!(
            run(probe(kind, 2000)),
            ProbeResult::Failed("HTTP status 503".into())
        );
        h.join().unwrap();

        let (port, h) = responder(None);
        let kind = CheckKind::Http {
            port,
            path: "/".into(),
            host: None,
        };
        match run(probe(kind, 100)) {
            ProbeResult::Failed(why) => assert!(why.contains("no answer in 100 ms"), "{why}"),
            r => panic!("{r:?}"),
        }
        h.join().unwrap();
    }

    #[test]
    #[ignore = "needs an ICMP socket (root, or net.ipv4.ping_group_range): `make host-test` runs it"]
    fn icmp_echo_to_loopback() {
        match run(probe(CheckKind::Icmp, 1000)) {
            ProbeResult::Passed(_) => {}
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn x_load_headers() {
        assert_eq!(x_load(b"\r\nServer: x\r\nX-Load: 42\r\n"), Some(42));
        assert_eq!(x_load(b"\r\nx-load:7"), Some(7));
        assert_eq!(x_load(b"\r\nX-Load: 101"), None);
        assert_eq!(x_load(b"\r\nX-Load: lots"), None);
        assert_eq!(x_load(b"\r\nContent-Type: text/plain"), None);
    }

    #[test]
    fn status_lines() {
        assert!(matches!(
            status_line(b"HTTP/1.0 302 Found"),
            ProbeResult::Passed(_)
        ));
        assert!(matches!(
            status_line(b"HTTP/1.1 404 Not Found"),
            ProbeResult::Failed(_)
        ));
        assert!(matches!(
            status_line(b"SSH-2.0-OpenSSH"),
            ProbeResult::Failed(_)
        ));
        assert!(matches!(status_line(b""), ProbeResult::Failed(_)));
    }
}
