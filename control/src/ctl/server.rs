//! The control socket server: accepts connections on a Unix socket (mode 0660), reads one
//! JSON request per line, passes it to the control thread and writes its reply.
//!
//! One thread serves every connection with `poll(2)` (rustix's safe wrapper, no
//! `unsafe` here) over non-blocking sockets, so an idle or slow client costs a file
//! descriptor and a small buffer, never a thread or another client's turn. A client is closed when it is idle (no request under way)
//! for [`Timeouts::idle`], when a request line is not complete [`Timeouts::request`]
//! after its first byte, or when it takes no byte of its reply for
//! [`Timeouts::request`]. At most [`MAX_CONNECTIONS`] are open; a new one beyond that
//! closes the connection that has been idle longest. A malformed request gets an error
//! reply and the connection stays open; a request longer than [`MAX_LINE`] closes it.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender, TryRecvError, TrySendError, bounded};
use rustix::event::{PollFd, PollFlags, Timespec};

use crate::proto::{MAX_LINE, Reply, Request, parse_request};

/// Connections open at once; a new one beyond this closes the one idle longest.
pub const MAX_CONNECTIONS: usize = 1024;
/// How long a request waits for the control thread.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server looks at the control thread's replies while one is due, and
/// at its stop flag otherwise.
const REPLY_POLL: Duration = Duration::from_millis(2);
const STOP_POLL: Duration = Duration::from_millis(200);

/// When the server gives up on a client (`control.idle_timeout_s`,
/// `control.request_timeout_s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A connection with no request under way and nothing to send is closed after
    /// this long without a byte.
    pub idle: Duration,
    /// A request line must be complete this long after its first byte, and a client
    /// must take some of its reply at least this often.
    pub request: Duration,
}

impl Timeouts {
    /// The timeouts of the `[control]` section.
    pub fn of(c: &crate::config::Control) -> Timeouts {
        Timeouts {
            idle: Duration::from_secs(c.idle_timeout_s),
            request: Duration::from_secs(c.request_timeout_s),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            idle: Duration::from_secs(60),
            request: Duration::from_secs(5),
        }
    }
}

/// A request on its way to the control thread, with where to send the reply.
#[derive(Debug)]
pub struct CtlRequest {
    /// The request.
    pub req: Request,
    /// Where the reply goes.
    pub reply: Sender<Reply>,
}

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// Another daemon answers on the socket.
    #[error("{0}: another tollgate is already running on this control socket")]
    InUse(PathBuf),
    /// The directory could not be made or the socket bound.
    #[error(
        "{path}: cannot create the control socket: {source} (set control.socket to a writable path)"
    )]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The running server. Dropping it stops its thread and removes the socket file.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `path` and serves it on a background thread, sending requests to `control`.
    pub fn start(
        path: &Path,
        control: Sender<CtlRequest>,
        timeouts: Timeouts,
    ) -> Result<Server, CtlError> {
        let bind_err = |source| CtlError::Bind {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(bind_err)?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(CtlError::InUse(path.to_path_buf()));
            }
            // A stale socket from a daemon that did not exit cleanly.
            std::fs::remove_file(path).map_err(bind_err)?;
        }
        let listener = UnixListener::bind(path).map_err(bind_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut served = Served {
            listener,
            control,
            timeouts,
            conns: Vec::new(),
            accept_paused_until: None,
            stop: stop.clone(),
        };
        let thread = thread::Builder::new()
            .name("tg-ctl".into())
            .spawn(move || served.run())
            .map_err(bind_err)?;
        Ok(Server {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One client.
struct Conn {
    stream: UnixStream,
    /// What it sent that is not a complete request yet (or waits its turn).
    inbuf: Vec<u8>,
    /// The reply being written, and how much of it went out.
    out: Vec<u8>,
    written: usize,
    /// The request at the control thread: where its reply comes, and until when.
    waiting: Option<(Receiver<Reply>, Instant)>,
    /// A complete request the control thread's queue had no room for yet.
    queued: Option<(Request, Instant)>,
    /// The last byte read or written.
    last_io: Instant,
    /// When the first byte of the incomplete request in `inbuf` came.
    request_since: Option<Instant>,
    /// The client will send nothing more.
    eof: bool,
    /// Close once the reply is out.
    close_after_write: bool,
    /// Close now.
    dead: bool,
}

impl Conn {
    fn new(stream: UnixStream, now: Instant) -> Conn {
        Conn {
            stream,
            inbuf: Vec::new(),
            out: Vec::new(),
            written: 0,
            waiting: None,
            queued: None,
            last_io: now,
            request_since: None,
            eof: false,
            close_after_write: false,
            dead: false,
        }
    }

    /// Nothing under way: no partial request, nothing at the control thread, nothing
    /// to write.
    fn idle(&self) -> bool {
        self.inbuf.is_empty() && self.waiting.is_none() && self.queued.is_none() && !self.writing()
    }

    fn writing(&self) -> bool {
        self.written < self.out.len()
    }

    fn reply(&mut self, r: &Reply) {
        self.out.clear();
        self.written = 0;
        self.out.extend_from_slice(r.to_line().as_bytes());
        self.out.push(b'\n');
    }

    /// Reads what the client sent, until the socket has no more.
    fn read(&mut self, now: Instant) {
        let mut buf = [0u8; 4096];
        // More than a line's worth waits in the socket until this is consumed.
        while self.inbuf.len() <= MAX_LINE {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(n) => {
                    if self.inbuf.is_empty() {
                        self.request_since = Some(now);
                    }
                    self.inbuf.extend_from_slice(&buf[..n]);
                    self.last_io = now;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
    }

    /// Writes what it can of the reply.
    fn write(&mut self, now: Instant) {
        while self.writing() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => {
                    self.written += n;
                    self.last_io = now;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        self.out.clear();
        self.written = 0;
        if self.close_after_write {
            self.dead = true;
        }
    }

    /// The next complete request line, without its newline; `Err` with the reply
    /// when the line is too long.
    fn next_line(&mut self, now: Instant) -> Option<Result<Vec<u8>, Reply>> {
        let Some(i) = self.inbuf.iter().position(|b| *b == b'\n') else {
            if self.eof && !self.inbuf.is_empty() && self.inbuf.len() <= MAX_LINE {
                // The last line of a client that finished writing, without its newline.
                self.request_since = None;
                return Some(Ok(std::mem::take(&mut self.inbuf)));
            }
            if self.inbuf.len() > MAX_LINE {
                return Some(Err(Reply::error(format!(
                    "request longer than {MAX_LINE} bytes"
                ))));
            }
            return None;
        };
        if i + 1 > MAX_LINE {
            return Some(Err(Reply::error(format!(
                "request longer than {MAX_LINE} bytes"
            ))));
        }
        let line: Vec<u8> = self.inbuf.drain(..=i).collect();
        self.request_since = (!self.inbuf.is_empty()).then_some(now);
        Some(Ok(line))
    }
}

/// The server's state, owned by its thread.
struct Served {
    listener: UnixListener,
    control: Sender<CtlRequest>,
    timeouts: Timeouts,
    conns: Vec<Conn>,
    /// Accepting waits while no descriptor is free (EMFILE) and no client can go.
    accept_paused_until: Option<Instant>,
    stop: Arc<AtomicBool>,
}

impl Served {
    fn run(&mut self) {
        // What poll said of each connection, by index in `conns` (the poll set itself
        // borrows the sockets, so it lives only for the call).
        let mut ready: Vec<PollFlags> = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if self.accept_paused_until.is_some_and(|t| now >= t) {
                self.accept_paused_until = None;
            }
            let accepting = self.accept_paused_until.is_none();
            let wait = Timespec::try_from(self.poll_timeout(now)).unwrap_or(Timespec {
                tv_sec: 0,
                tv_nsec: 200_000_000,
            });
            let listener_ready = match self.poll(accepting, &wait, &mut ready) {
                Ok(r) => r,
                // EINTR; anything else cannot happen with valid arguments.
                Err(_) => continue,
            };
            let now = Instant::now();
            for (c, r) in self.conns.iter_mut().zip(&ready) {
                let r = *r;
                if r.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) && !c.writing() {
                    c.read(now);
                }
                if r.intersects(PollFlags::OUT | PollFlags::HUP | PollFlags::ERR) && c.writing() {
                    c.write(now);
                }
            }
            self.serve(now);
            if accepting && listener_ready {
                self.accept(now);
            }
            self.expire(now);
        }
    }

    /// Waits up to `wait` for the listener (when `accepting`) and the clients; fills
    /// `ready` with what each client is ready for (one entry per connection) and says
    /// whether a connection waits to be accepted.
    fn poll(
        &self,
        accepting: bool,
        wait: &Timespec,
        ready: &mut Vec<PollFlags>,
    ) -> rustix::io::Result<bool> {
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(self.conns.len() + 1);
        // Which connection each entry after the listener's is.
        let mut of: Vec<usize> = Vec::with_capacity(self.conns.len());
        fds.push(PollFd::new(
            &self.listener,
            if accepting {
                PollFlags::IN
            } else {
                PollFlags::empty()
            },
        ));
        for (i, c) in self.conns.iter().enumerate() {
            let events = if c.writing() {
                PollFlags::OUT
            } else if c.eof {
                // Nothing more to read; a hang-up would be reported at once, again
                // and again: left out of the set.
                continue;
            } else if c.waiting.is_none() && c.queued.is_none() {
                PollFlags::IN
            } else {
                PollFlags::empty()
            };
            fds.push(PollFd::new(&c.stream, events));
            of.push(i);
        }
        rustix::event::poll(&mut fds, Some(wait))?;
        ready.clear();
        ready.resize(self.conns.len(), PollFlags::empty());
        for (fd, i) in fds[1..].iter().zip(&of) {
            ready[*i] = fd.revents();
        }
        Ok(fds[0].revents().contains(PollFlags::IN))
    }

    /// How long poll may wait: until the next timeout, shorter while a reply is due.
    fn poll_timeout(&self, now: Instant) -> Duration {
        let mut wait = STOP_POLL;
        for c in &self.conns {
            if c.waiting.is_some() || c.queued.is_some() {
                return REPLY_POLL;
            }
            let due = if c.writing() {
                c.last_io + self.timeouts.request
            } else if let Some(t) = c.request_since {
                t + self.timeouts.request
            } else {
                c.last_io + self.timeouts.idle
            };
            wait = wait.min(due.saturating_duration_since(now));
        }
        if let Some(t) = self.accept_paused_until {
            wait = wait.min(t.saturating_duration_since(now));
        }
        wait
    }

    /// Moves requests to the control thread and replies to their clients.
    fn serve(&mut self, now: Instant) {
        for c in &mut self.conns {
            if c.dead {
                continue;
            }
            if let Some((rx, deadline)) = &c.waiting {
                let reply = match rx.try_recv() {
                    Ok(r) => Some(r),
                    Err(TryRecvError::Empty) if now >= *deadline => {
                        Some(Reply::error("the control thread did not answer in time"))
                    }
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => {
                        Some(Reply::error("the daemon is shutting down"))
                    }
                };
                if let Some(r) = reply {
                    c.waiting = None;
                    c.reply(&r);
                    c.write(now);
                }
                continue;
            }
            if c.writing() {
                continue;
            }
            if c.queued.is_none() {
                // The next request: malformed ones are answered here.
                loop {
                    match c.next_line(now) {
                        None => break,
                        Some(Err(r)) => {
                            c.inbuf.clear();
                            c.close_after_write = true;
                            c.reply(&r);
                            break;
                        }
                        Some(Ok(line)) => {
                            let reply = match std::str::from_utf8(&line) {
                                Err(_) => Reply::error("malformed request: not UTF-8"),
                                Ok(s) if s.trim().is_empty() => continue,
                                Ok(s) => match parse_request(s.trim()) {
                                    Err(e) => Reply::error(e),
                                    Ok(req) => {
                                        c.queued = Some((req, now + REPLY_TIMEOUT));
                                        break;
                                    }
                                },
                            };
                            c.reply(&reply);
                            break;
                        }
                    }
                }
            }
            if let Some((req, deadline)) = c.queued.take() {
                let (tx, rx) = bounded(1);
                match self.control.try_send(CtlRequest { req, reply: tx }) {
                    Ok(()) => c.waiting = Some((rx, deadline)),
                    Err(TrySendError::Full(r)) if now < deadline => {
                        c.queued = Some((r.req, deadline));
                    }
                    Err(TrySendError::Full(_)) => {
                        c.reply(&Reply::error("the control thread did not answer in time"))
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        c.reply(&Reply::error("the daemon is shutting down"))
                    }
                }
            }
            if c.writing() {
                c.write(now);
            } else if c.eof && c.waiting.is_none() && c.queued.is_none() {
                // What is left in `inbuf` is an unfinished last line: dropped.
                c.dead = true;
            }
        }
    }

    /// Accepts every waiting connection; beyond the limit (or the process's descriptor
    /// limit), the connection idle longest makes room.
    fn accept(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if self.live() >= MAX_CONNECTIONS && !self.evict_idlest() {
                        let mut s = stream;
                        let _ = s.write_all(
                            format!(
                                "{}\n",
                                Reply::error("too many control connections busy; try again")
                                    .to_line()
                            )
                            .as_bytes(),
                        );
                        continue;
                    }
                    // Not `now`: it may have connected after this round began.
                    self.conns.push(Conn::new(stream, Instant::now()));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    if matches!(
                        rustix::io::Errno::from_io_error(&e),
                        Some(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE)
                    ) {
                        tracing::warn!(
                            connections = self.live(),
                            "control socket: no file descriptor left for a client"
                        );
                        if self.evict_idlest() {
                            self.close_dead();
                            continue;
                        }
                    }
                    self.accept_paused_until = Some(now + Duration::from_millis(100));
                    return;
                }
            }
        }
    }

    fn live(&self) -> usize {
        self.conns.iter().filter(|c| !c.dead).count()
    }

    /// Closes the connection idle longest; false if none is idle.
    fn evict_idlest(&mut self) -> bool {
        match self
            .conns
            .iter_mut()
            .filter(|c| !c.dead && c.idle())
            .min_by_key(|c| c.last_io)
        {
            Some(c) => {
                c.dead = true;
                true
            }
            None => false,
        }
    }

    /// Closes idle and slow clients, and the dead.
    fn expire(&mut self, now: Instant) {
        let t = self.timeouts;
        for c in &mut self.conns {
            if c.dead {
                continue;
            }
            if c.writing() {
                if now >= c.last_io + t.request {
                    c.dead = true;
                }
            } else if c.waiting.is_some() || c.queued.is_some() {
                // The control thread's deadline covers it.
            } else if let Some(since) = c.request_since {
                if now >= since + t.request {
                    c.inbuf.clear();
                    c.request_since = None;
                    c.close_after_write = true;
                    c.reply(&Reply::error(format!(
                        "request not complete {} s after its first byte",
                        t.request.as_secs()
                    )));
                    c.write(now);
                }
            } else if now >= c.last_io + t.idle {
                c.dead = true;
            }
        }
        self.close_dead();
    }

    fn close_dead(&mut self) {
        self.conns.retain(|c| !c.dead);
    }
}
