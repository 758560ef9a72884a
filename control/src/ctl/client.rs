//! `tollgate ctl`: one request over the control socket, one reply, read back into the
//! typed answer ([`Answer`]).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::proto::{Answer, Envelope, Reply, Request};

/// Sends `req` to the daemon listening on `socket` and returns its reply.
pub fn call(socket: &Path, req: &Request, timeout: Duration) -> Result<Reply, String> {
    call_raw(socket, &Envelope::from(req.clone()), timeout)
}

/// Sends a request line as it is (`tollgate ctl raw`) and returns the reply.
pub fn call_raw(socket: &Path, req: &Envelope, timeout: Duration) -> Result<Reply, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                " - is tollgate running? (`make run`, or `tollgate run --config FILE`; `--socket` picks another path)"
            }
            std::io::ErrorKind::PermissionDenied => " - run as root or as a member of the socket's group",
            _ => "",
        };
        format!("cannot connect to {}: {e}{hint}", socket.display())
    })?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    writeln!(s, "{line}").map_err(|e| format!("sending the request: {e}"))?;
    let mut reply = String::new();
    BufReader::new(s)
        .read_line(&mut reply)
        .map_err(|e| format!("reading the reply: {e}"))?;
    if reply.is_empty() {
        return Err("the daemon closed the connection without replying".into());
    }
    serde_json::from_str(&reply).map_err(|e| format!("unreadable reply ({e}): {}", reply.trim()))
}

/// Sends `req` and reads the answer's data into its type; an error reply is `Err` with
/// the daemon's message.
pub fn ask(socket: &Path, req: &Request, timeout: Duration) -> Result<Answer, String> {
    let reply = call(socket, req, timeout)?;
    if !reply.ok {
        return Err(reply.error.unwrap_or_else(|| "failed".into()));
    }
    Answer::parse(req, reply.data)
        .map_err(|e| format!("unreadable answer to `{}`: {e}", req.name()))
}
