//! The session log (SES-1: "a Close writes the session log"): one JSON line per closed
//! session, appended to a file, for operators and for re-rating. Written after the Stop
//! is in the spool; the spool, not this file, is the durable record.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::radius::attrs::{AcctRecord, Counters};
use crate::radius::dict::DisconnectCause;

/// One closed session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLogEntry {
    /// Acct-Session-Id.
    pub session_id: String,
    /// User id.
    pub user: String,
    /// Calling-Station-Id (MAC or mobile id), when known.
    pub channel: Option<String>,
    /// The subscriber's address.
    pub framed_ip: Option<Ipv4Addr>,
    /// Login, seconds since 1970.
    pub start_unix: u64,
    /// Close, seconds since 1970.
    pub stop_unix: u64,
    /// Final counters.
    pub counters: Counters,
    /// Why it closed (Tollgate-Disconnect-Cause name).
    pub cause: String,
    /// The RADIUS Acct-Terminate-Cause name.
    pub terminate_cause: String,
}

impl SessionLogEntry {
    /// The entry for a Stop record.
    pub fn from_stop(stop: &AcctRecord) -> SessionLogEntry {
        let cause = stop.cause.unwrap_or(DisconnectCause::Logout);
        SessionLogEntry {
            session_id: stop.session_id.clone(),
            user: stop.user_name.clone(),
            channel: stop.calling_station_id.clone(),
            framed_ip: stop.framed_ip,
            start_unix: stop.event_time.saturating_sub(stop.session_time_s as u64),
            stop_unix: stop.event_time,
            counters: stop.counters,
            cause: cause.name().to_string(),
            terminate_cause: cause.terminate_cause().name().to_string(),
        }
    }
}

/// An append-only JSON-lines file.
#[derive(Debug)]
pub struct SessionLog {
    file: File,
}

impl SessionLog {
    /// Opens `path` for appending, creating it (and its directory).
    pub fn open(path: &Path) -> io::Result<SessionLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(SessionLog { file })
    }

    /// Appends one line (a single `write` of the whole line, so concurrent readers never
    /// see half of one).
    pub fn write(&mut self, entry: &SessionLogEntry) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::dict::AcctStatusType;

    #[test]
    fn appends_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log/sessions.jsonl");
        let stop = AcctRecord {
            status: AcctStatusType::Stop,
            session_id: "s1".into(),
            user_name: "alice".into(),
            framed_ip: Some(Ipv4Addr::new(10, 10, 0, 9)),
            calling_station_id: Some("02:00:00:00:00:09".into()),
            class: vec![],
            counters: Counters {
                octets_up: 1,
                octets_down: 2,
                packets_up: 3,
                packets_down: 4,
            },
            session_time_s: 60,
            cause: Some(DisconnectCause::IdleTime),
            event_time: 1000,
        };
        let mut log = SessionLog::open(&path).unwrap();
        log.write(&SessionLogEntry::from_stop(&stop)).unwrap();
        log.write(&SessionLogEntry::from_stop(&stop)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let e: SessionLogEntry = serde_json::from_str(lines[0]).unwrap();
        assert_eq!((e.start_unix, e.stop_unix), (940, 1000));
        assert_eq!(e.terminate_cause, "Idle-Timeout");
        assert_eq!(e.cause, "Idle-Time");
    }
}
