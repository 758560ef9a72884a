//! The thin UDP shell around a sans-I/O [`Client`]: one non-blocking socket, pumped from
//! the control loop. No thread per request: a pump moves what is ready and returns.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use tollgate_dataplane::time::Instant;

use super::client::Client;

/// What one [`UdpClient::pump`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pumped {
    /// Datagrams sent.
    pub sent: usize,
    /// Datagrams received.
    pub received: usize,
}

/// A RADIUS client on a UDP socket.
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    /// The sans-I/O client; send requests and read events through it.
    pub client: Client,
    blocked: Option<(SocketAddr, Vec<u8>)>,
    buf: Vec<u8>,
    /// Send errors other than "would block" (the datagram is dropped: the client
    /// retransmits on its timer).
    pub send_errors: u64,
}

impl UdpClient {
    /// Binds `local` (e.g. `0.0.0.0:0`) and wraps `client`.
    pub fn bind(local: SocketAddr, client: Client) -> io::Result<UdpClient> {
        let socket = UdpSocket::bind(local)?;
        socket.set_nonblocking(true)?;
        Ok(UdpClient {
            socket,
            client,
            blocked: None,
            buf: vec![0; 4096],
            send_errors: 0,
        })
    }

    /// The socket's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Runs due timers, sends what is queued, reads what arrived (and sends what the
    /// replies released). Never blocks.
    pub fn pump(&mut self, now: Instant) -> Pumped {
        let mut done = Pumped::default();
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        self.flush(&mut done);
        loop {
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    done.received += 1;
                    self.client.handle_datagram(now, from, &self.buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP port unreachable from a dead server shows up here on Linux:
                // the request's timer deals with it.
                Err(_) => continue,
            }
        }
        self.flush(&mut done);
        done
    }

    fn flush(&mut self, done: &mut Pumped) {
        loop {
            let Some((to, bytes)) = self.blocked.take().or_else(|| self.client.poll_transmit())
            else {
                return;
            };
            match self.socket.send_to(&bytes, to) {
                Ok(_) => done.sent += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = Some((to, bytes));
                    return;
                }
                Err(e) => {
                    self.send_errors += 1;
                    tracing::debug!(server = %to, error = %e, "RADIUS send failed");
                }
            }
        }
    }
}

/// The CoA / Disconnect listener on a UDP socket (RFC 5176 port 3799 by default).
#[derive(Debug)]
pub struct UdpCoaListener {
    socket: UdpSocket,
    /// The sans-I/O listener (for its counters).
    pub listener: super::coa::Listener,
    buf: Vec<u8>,
}

impl UdpCoaListener {
    /// Binds `local` and wraps `listener`.
    pub fn bind(local: SocketAddr, listener: super::coa::Listener) -> io::Result<UdpCoaListener> {
        let socket = UdpSocket::bind(local)?;
        socket.set_nonblocking(true)?;
        Ok(UdpCoaListener {
            socket,
            listener,
            buf: vec![0; 4096],
        })
    }

    /// The socket's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Answers every request waiting on the socket; returns how many datagrams were
    /// read. `now_unix` is the wall clock in seconds (Event-Timestamp checks).
    pub fn pump(
        &mut self,
        now_unix: u64,
        sessions: &mut dyn super::coa::SessionDirectory,
    ) -> usize {
        let mut n = 0;
        loop {
            match self.socket.recv_from(&mut self.buf) {
                Ok((len, from)) => {
                    n += 1;
                    if let Some(answer) =
                        self.listener
                            .handle(now_unix, from, &self.buf[..len], sessions)
                    {
                        // A full socket buffer loses the answer; the client retransmits
                        // and gets it from the duplicate cache.
                        let _ = self.socket.send_to(&answer, from);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return n,
            }
        }
    }
}
