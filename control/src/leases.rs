//! The DHCP lease file (`[dhcp] lease_file`): what keeps leases over a restart of the
//! gateway (issue 16). A journal of lines, `put KEY HEX` (the lease in the core's
//! encoded form) or `del KEY`, appended as the core reports changes and flushed once a
//! pass; at a start the journal is folded to the live leases, written back compacted
//! (a new file renamed over the old), and handed to the core (`Core::dhcp_restore`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tollgate_control_core::gateway::dhcp::LeaseChange;

/// The open lease file.
#[derive(Debug)]
pub struct LeaseFile {
    path: PathBuf,
    out: BufWriter<File>,
    /// Changes written.
    pub changes: u64,
    /// Changes synced to the disk.
    synced: u64,
    /// Write errors (logged once each time the file starts failing).
    pub errors: u64,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Folds a journal's text to the live leases by key; lines that do not read are
/// skipped (a line cut short by a crash is the last one).
pub fn fold(text: &str) -> BTreeMap<String, Vec<u8>> {
    let mut live = BTreeMap::new();
    for line in text.lines() {
        let mut w = line.split_ascii_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some("put"), Some(k), Some(h)) => {
                if let Some(b) = unhex(h) {
                    live.insert(k.to_string(), b);
                }
            }
            (Some("del"), Some(k), None) => {
                live.remove(k);
            }
            _ => {}
        }
    }
    live
}

impl LeaseFile {
    /// Opens `path` (creating it and its directory), folds and compacts what it holds,
    /// and returns the file with the live leases.
    pub fn open(path: &Path) -> std::io::Result<(LeaseFile, Vec<Vec<u8>>)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let live = fold(&text);
        let tmp = path.with_extension("compacting");
        {
            let mut w = BufWriter::new(File::create(&tmp)?);
            for (k, b) in &live {
                writeln!(w, "put {k} {}", hex(b))?;
            }
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        let f = OpenOptions::new().append(true).open(path)?;
        Ok((
            LeaseFile {
                path: path.to_path_buf(),
                out: BufWriter::new(f),
                changes: 0,
                synced: 0,
                errors: 0,
            },
            live.into_values().collect(),
        ))
    }

    /// Appends a change.
    pub fn write(&mut self, c: &LeaseChange) {
        let r = match &c.lease {
            Some(b) => writeln!(self.out, "put {} {}", c.key, hex(b)),
            None => writeln!(self.out, "del {}", c.key),
        };
        match r {
            Ok(()) => self.changes += 1,
            Err(e) => self.failed(&e),
        }
    }

    /// Flushes what was appended and, if anything was, syncs it to the disk: a lease
    /// the client was ACKed survives a crash of the host, not only of the process.
    pub fn flush(&mut self) {
        if self.changes == self.synced {
            return;
        }
        match self
            .out
            .flush()
            .and_then(|()| self.out.get_ref().sync_data())
        {
            Ok(()) => self.synced = self.changes,
            Err(e) => self.failed(&e),
        }
    }

    fn failed(&mut self, e: &std::io::Error) {
        if self.errors == 0 {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the DHCP lease file");
        }
        self.errors += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_folds_to_the_live_leases_and_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/leases.dhcp");
        let (mut f, live) = LeaseFile::open(&path).unwrap();
        assert!(live.is_empty());
        let ch = |k: &str, b: Option<&[u8]>| LeaseChange {
            key: k.into(),
            lease: b.map(<[u8]>::to_vec),
        };
        f.write(&ch("0.-.-02:00:00:00:00:01", Some(&[1, 2, 3])));
        f.write(&ch("0.7.-02:00:00:00:00:02", Some(&[4])));
        f.write(&ch("0.-.-02:00:00:00:00:01", Some(&[1, 2, 0xff])));
        f.write(&ch("0.7.-02:00:00:00:00:02", None));
        f.flush();
        drop(f);
        // A line cut short by a crash is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"put 0.9.-02:00:00:00:00:03 0a0")
            .unwrap();
        let (_f, live) = LeaseFile::open(&path).unwrap();
        // The later put replaced the earlier; the del removed its key.
        assert_eq!(live, vec![vec![1, 2, 0xff]]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "put 0.-.-02:00:00:00:00:01 0102ff\n"
        );
    }
}
