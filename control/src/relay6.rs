//! The DHCPv6 relay's socket (issue 16, relay mode, `[ipv6] dhcpv6_mode = "relay"`): the
//! shell end of [`tollgate_control_core::dhcpv6::Relay`]. RELAY-FORWs the core produces
//! ([`Output::Dhcpv6ToServer`](tollgate_control_core::gateway::Output)) go out of one
//! UDP socket bound to port 547 through the host's own IPv6 stack (the servers are
//! reached by the kernel's routes, not through the fast path); what arrives on it (the
//! servers' RELAY-REPLs) goes to [`Core::on_dhcpv6_server`] once per control pass,
//! without blocking.

use std::io::ErrorKind;
use std::net::{SocketAddr, SocketAddrV6, UdpSocket};

use tollgate_control_core::dhcpv6::ToServer;
use tollgate_control_core::dhcpv6::wire::SERVER_PORT;
use tollgate_control_core::gateway::Core;
use tollgate_dataplane::time::Instant;

/// Datagrams read per pass at most (the rest wait for the next pass).
const BURST: usize = 64;

/// What the socket counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// RELAY-FORWs sent.
    pub sent: u64,
    /// Sends that failed (no route to the server, say).
    pub send_errors: u64,
    /// Datagrams received (handed to the core).
    pub received: u64,
    /// Datagrams from an IPv4 peer (a v4-mapped address): dropped.
    pub not_ipv6: u64,
}

/// The relay's UDP socket.
#[derive(Debug)]
pub struct RelaySocket {
    socket: UdpSocket,
    buf: Vec<u8>,
    /// Its counters.
    pub stats: RelayStats,
}

impl RelaySocket {
    /// Binds `local` (port 547), non-blocking.
    pub fn bind(local: SocketAddrV6) -> std::io::Result<RelaySocket> {
        let socket = UdpSocket::bind(local)?;
        socket.set_nonblocking(true)?;
        Ok(RelaySocket {
            socket,
            buf: vec![0; 65_535],
            stats: RelayStats::default(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends `t` to its server's port 547.
    pub fn send(&mut self, t: &ToServer) {
        let to = SocketAddrV6::new(t.dst, SERVER_PORT, 0, 0);
        match self.socket.send_to(&t.message, to) {
            Ok(_) => self.stats.sent += 1,
            Err(e) => {
                if self.stats.send_errors == 0 {
                    tracing::warn!(server = %t.dst, error = %e, "cannot send to the DHCPv6 server");
                }
                self.stats.send_errors += 1;
            }
        }
    }

    /// Hands what arrived to the core (at most [`BURST`] datagrams).
    pub fn poll(&mut self, core: &mut Core, now: Instant) {
        for _ in 0..BURST {
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, SocketAddr::V6(src))) => {
                    self.stats.received += 1;
                    core.on_dhcpv6_server(now, *src.ip(), &self.buf[..n]);
                }
                Ok(_) => self.stats.not_ipv6 += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(error = %e, "DHCPv6 relay socket");
                    return;
                }
            }
        }
    }
}
