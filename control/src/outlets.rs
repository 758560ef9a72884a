//! Where the control core's outputs that are not commands go: new forwarding snapshots
//! to the workers' snapshot publisher, and records to their JSON-lines files.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tollgate_dataplane::Forwarding;
use tollgate_dataplane::snapshot::Publisher;

use tollgate_control_core::gateway::RecordKind;

/// A JSON-lines file records are appended to.
#[derive(Debug)]
pub struct RecordFile {
    path: PathBuf,
    out: BufWriter<File>,
    /// Lines written.
    pub lines: u64,
    /// Write errors (logged once each time the file starts failing).
    pub errors: u64,
}

impl RecordFile {
    /// Opens `path` for appending, creating it (and its directory) if needed.
    pub fn open(path: &Path) -> std::io::Result<RecordFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RecordFile {
            path: path.to_path_buf(),
            out: BufWriter::new(f),
            lines: 0,
            errors: 0,
        })
    }

    fn write(&mut self, line: &str) {
        match writeln!(self.out, "{line}") {
            Ok(()) => self.lines += 1,
            Err(e) => {
                if self.errors == 0 {
                    tracing::error!(path = %self.path.display(), error = %e, "cannot write records");
                }
                self.errors += 1;
            }
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.out.flush() {
            if self.errors == 0 {
                tracing::error!(path = %self.path.display(), error = %e, "cannot write records");
            }
            self.errors += 1;
        }
    }
}

/// The outlets of a shell.
pub struct Outlets {
    publisher: Publisher<Forwarding>,
    flows: Option<RecordFile>,
    sessions: Option<RecordFile>,
    rating: Option<RecordFile>,
    leases: Option<crate::leases::LeaseFile>,
    /// The DHCPv6 relay's socket, in relay mode.
    relay6: Option<crate::relay6::RelaySocket>,
    /// RELAY-FORWs the core produced without a socket to send them (replay, tools).
    pub relay6_unsent: u64,
    /// Every record, when kept in memory too (replay summaries, tests).
    pub kept: Option<Vec<(RecordKind, String)>>,
}

impl std::fmt::Debug for Outlets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outlets({:?}, {:?})", self.flows, self.sessions)
    }
}

impl Outlets {
    /// Outlets publishing through `publisher` and writing to the given files (none when
    /// the path is empty).
    pub fn new(
        publisher: Publisher<Forwarding>,
        flows: &Path,
        sessions: &Path,
    ) -> std::io::Result<Outlets> {
        let open = |p: &Path| {
            (!p.as_os_str().is_empty())
                .then(|| RecordFile::open(p))
                .transpose()
        };
        Ok(Outlets {
            publisher,
            flows: open(flows)?,
            sessions: open(sessions)?,
            rating: None,
            leases: None,
            relay6: None,
            relay6_unsent: 0,
            kept: None,
        })
    }

    /// Also writes usage records for rating (tunnel use, service levels) to `path` (none
    /// when empty).
    pub fn with_rating_records(mut self, path: &Path) -> std::io::Result<Outlets> {
        if !path.as_os_str().is_empty() {
            self.rating = Some(RecordFile::open(path)?);
        }
        Ok(self)
    }

    /// Also keeps DHCP leases in `path` (`[dhcp] lease_file`); returns the leases it
    /// held, for `Core::dhcp_restore`.
    pub fn with_lease_file(mut self, path: &Path) -> std::io::Result<(Outlets, Vec<Vec<u8>>)> {
        let (f, live) = crate::leases::LeaseFile::open(path)?;
        self.leases = Some(f);
        Ok((self, live))
    }

    /// Also sends DHCPv6 relay messages out of `socket` (`[ipv6] dhcpv6_mode = "relay"`).
    pub fn with_dhcpv6_relay(mut self, socket: crate::relay6::RelaySocket) -> Outlets {
        self.relay6 = Some(socket);
        self
    }

    /// Sends a RELAY-FORW to its server.
    pub fn dhcpv6_to_server(&mut self, t: &tollgate_control_core::dhcpv6::ToServer) {
        match self.relay6.as_mut() {
            Some(s) => s.send(t),
            None => self.relay6_unsent += 1,
        }
    }

    /// The DHCPv6 relay's socket, in relay mode.
    pub fn dhcpv6_relay(&mut self) -> Option<&mut crate::relay6::RelaySocket> {
        self.relay6.as_mut()
    }

    /// Keeps or forgets a DHCP lease.
    pub fn lease(&mut self, c: &tollgate_control_core::gateway::dhcp::LeaseChange) {
        if let Some(f) = self.leases.as_mut() {
            f.write(c);
        }
    }

    /// The snapshot publisher.
    pub fn publisher(&self) -> &Publisher<Forwarding> {
        &self.publisher
    }

    /// Publishes a new snapshot.
    pub fn publish(&mut self, f: Forwarding) {
        self.publisher.publish(f);
    }

    /// Appends a record.
    pub fn record(&mut self, kind: RecordKind, line: String) {
        let file = match kind {
            RecordKind::Flow => self.flows.as_mut(),
            RecordKind::Session => self.sessions.as_mut(),
            RecordKind::Rating => self.rating.as_mut(),
        };
        if let Some(f) = file {
            f.write(&line);
        }
        if let Some(k) = self.kept.as_mut() {
            k.push((kind, line));
        }
    }

    /// Flushes the files.
    pub fn flush(&mut self) {
        for f in [
            self.flows.as_mut(),
            self.sessions.as_mut(),
            self.rating.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            f.flush();
        }
        if let Some(f) = self.leases.as_mut() {
            f.flush();
        }
    }

    /// Lines written per file (flows, sessions).
    pub fn written(&self) -> (u64, u64) {
        (
            self.flows.as_ref().map_or(0, |f| f.lines),
            self.sessions.as_ref().map_or(0, |f| f.lines),
        )
    }
}
