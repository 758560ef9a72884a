//! The control socket server: accepts connections on a Unix socket (mode 0660), reads one
//! JSON request per line, passes it to the control thread and writes its reply. A
//! malformed request gets an error reply and the connection stays open; a request
//! longer than [`MAX_LINE`] closes it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam::channel::{Sender, bounded};

use super::proto::{MAX_LINE, Reply, Request, parse_request};

/// Connections served at once; more are told to come back later.
const MAX_CONNECTIONS: usize = 32;
/// How long a connection waits for the control thread.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

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

/// The running server. Dropping it removes the socket file.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
}

impl Server {
    /// Binds `path` and serves it on background threads, sending requests to `control`.
    pub fn start(path: &Path, control: Sender<CtlRequest>) -> Result<Server, CtlError> {
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
        let active = Arc::new(AtomicUsize::new(0));
        thread::Builder::new()
            .name("tg-ctl".into())
            .spawn(move || accept_loop(listener, control, active))
            .map_err(bind_err)?;
        Ok(Server {
            path: path.to_path_buf(),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: UnixListener, control: Sender<CtlRequest>, active: Arc<AtomicUsize>) {
    for conn in listener.incoming() {
        let Ok(mut stream) = conn else { continue };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            let _ = writeln!(
                stream,
                "{}",
                Reply::error("too many control connections; try again").to_line()
            );
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let control = control.clone();
        let active2 = active.clone();
        let spawned = thread::Builder::new()
            .name("tg-ctl-conn".into())
            .spawn(move || {
                serve(stream, &control);
                active2.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn serve(stream: UnixStream, control: &Sender<CtlRequest>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        if n > MAX_LINE {
            let _ = writeln!(
                writer,
                "{}",
                Reply::error(format!("request longer than {MAX_LINE} bytes")).to_line()
            );
            return;
        }
        let reply = match std::str::from_utf8(&line) {
            Err(_) => Reply::error("malformed request: not UTF-8"),
            Ok(s) if s.trim().is_empty() => continue,
            Ok(s) => match parse_request(s.trim()) {
                Err(e) => Reply::error(e),
                Ok(req) => ask(control, req),
            },
        };
        if writeln!(writer, "{}", reply.to_line()).is_err() {
            return;
        }
    }
}

fn ask(control: &Sender<CtlRequest>, req: Request) -> Reply {
    let (tx, rx) = bounded(1);
    if control.send(CtlRequest { req, reply: tx }).is_err() {
        return Reply::error("the daemon is shutting down");
    }
    rx.recv_timeout(REPLY_TIMEOUT)
        .unwrap_or_else(|_| Reply::error("the control thread did not answer in time"))
}
