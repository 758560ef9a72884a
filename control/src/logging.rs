//! Where the daemon's log lines go: standard error, through a bounded queue and a thread
//! of their own, so that logging never panics and never holds anything up.
//!
//! A closed pipe (`tollgate run 2>&1 | tee log`, then Ctrl-C kills `tee` first) makes
//! every write fail with EPIPE; `tracing-subscriber` reports a failed write with
//! `eprintln!`, which panics when standard error is that pipe. A pipe whose reader has
//! stopped reading (a paused pager) blocks the writer. Either would stop the shutdown
//! before the sessions' Stops are committed. Here the thread that logs only puts the
//! line in a queue ([`LOG_QUEUE_LINES`] lines; a full queue drops the line and counts
//! it); the writer thread writes the lines out and, once a write has failed, throws the
//! rest away. [`flush`] waits a bounded time for the queue to drain before the process
//! exits.

use std::io::{IsTerminal as _, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender, TrySendError, bounded};

/// Lines that may wait for the writer thread; more are dropped and counted.
pub const LOG_QUEUE_LINES: usize = 4096;

/// What the log output counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Lines written.
    pub written: u64,
    /// Lines dropped because the queue was full (the output is slower than the logging).
    pub dropped_full: u64,
    /// Lines thrown away because the output failed (a closed pipe, a full disk).
    pub dropped_failed: u64,
}

struct Shared {
    written: AtomicU64,
    dropped_full: AtomicU64,
    dropped_failed: AtomicU64,
    failed: AtomicBool,
    /// Lines queued and not yet written or thrown away.
    queued: AtomicU64,
    /// The dropped lines were reported (once, at exit).
    reported: AtomicBool,
}

/// The log output: a [`tracing_subscriber::fmt::MakeWriter`] whose writers queue lines.
#[derive(Clone)]
pub struct LogSink {
    tx: Sender<Vec<u8>>,
    shared: &'static Shared,
}

static SINK: OnceLock<LogSink> = OnceLock::new();

/// One event's output: queued as one line when dropped.
pub struct LogLine {
    buf: Vec<u8>,
    sink: LogSink,
}

impl Write for LogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.sink.queue(std::mem::take(&mut self.buf));
        }
    }
}

impl LogSink {
    fn queue(&self, line: Vec<u8>) {
        if self.shared.failed.load(Ordering::Relaxed) {
            self.shared.dropped_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shared.queued.fetch_sub(1, Ordering::AcqRel);
                self.shared.dropped_full.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// What was written and dropped so far.
    pub fn stats(&self) -> LogStats {
        LogStats {
            written: self.shared.written.load(Ordering::Relaxed),
            dropped_full: self.shared.dropped_full.load(Ordering::Relaxed),
            dropped_failed: self.shared.dropped_failed.load(Ordering::Relaxed),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            buf: Vec::new(),
            sink: self.clone(),
        }
    }
}

fn write_out(rx: Receiver<Vec<u8>>, shared: &'static Shared, mut out: impl Write) {
    while let Ok(line) = rx.recv() {
        if shared.failed.load(Ordering::Relaxed) {
            shared.dropped_failed.fetch_add(1, Ordering::Relaxed);
        } else if out.write_all(&line).and_then(|()| out.flush()).is_ok() {
            shared.written.fetch_add(1, Ordering::Relaxed);
        } else {
            shared.failed.store(true, Ordering::Relaxed);
            shared.dropped_failed.fetch_add(1, Ordering::Relaxed);
        }
        shared.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Starts the writer thread over `out` (standard error for the daemon) and returns the
/// sink. The first call wins; later calls return the same sink.
pub fn sink(out: impl Write + Send + 'static) -> LogSink {
    let mut out = Some(out);
    SINK.get_or_init(|| {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            written: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
            dropped_failed: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            queued: AtomicU64::new(0),
            reported: AtomicBool::new(false),
        }));
        let (tx, rx) = bounded(LOG_QUEUE_LINES);
        let out = out.take().expect("first initialisation");
        let spawned = std::thread::Builder::new()
            .name("tg-log".into())
            .spawn(move || write_out(rx, shared, out));
        if spawned.is_err() {
            // No thread: every line is dropped and counted; logging still never blocks.
            shared.failed.store(true, Ordering::Relaxed);
        }
        LogSink { tx, shared }
    })
    .clone()
}

/// Installs the log output for the `tollgate` binary: `level` (or `RUST_LOG`) filtered
/// lines to standard error through [`sink`].
pub fn init(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // refinery announces every migration run at info ("going to apply all migrations"
        // on each fresh store); the stores log what they upgraded themselves.
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(format!("{level},refinery_core=warn")))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink(std::io::stderr()))
        // Colour only for a person at a terminal: a log file or a journal gets plain text,
        // not escape codes (and `NO_COLOR` turns colour off everywhere).
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        // A failed write is counted here; the default reports it with `eprintln!`,
        // which panics when standard error is the pipe that failed.
        .log_internal_errors(false)
        .try_init();
}

/// Waits up to `limit` for the queued lines to be written (or thrown away), then says
/// how many were dropped, if any, on a best-effort basis. Call before the process exits.
pub fn flush(limit: Duration) -> Option<LogStats> {
    let sink = SINK.get()?;
    let deadline = Instant::now() + limit;
    while sink.shared.queued.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let s = sink.stats();
    if s.dropped_full > 0
        && !sink.shared.failed.load(Ordering::Relaxed)
        && !sink.shared.reported.swap(true, Ordering::Relaxed)
    {
        let _ = writeln!(
            std::io::stderr(),
            "tollgate: {} log lines dropped: the log output was slower than the logging",
            s.dropped_full
        );
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails every write, like a pipe whose reader has gone.
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_output_drops_lines_and_never_blocks() {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            written: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
            dropped_failed: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            queued: AtomicU64::new(0),
            reported: AtomicBool::new(false),
        }));
        let (tx, rx) = bounded(4);
        let sink = LogSink { tx, shared };
        // No writer yet: the queue fills, the rest is dropped at once.
        let started = Instant::now();
        for i in 0..10 {
            let mut l = tracing_subscriber::fmt::MakeWriter::make_writer(&sink);
            writeln!(l, "line {i}").unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(sink.stats().dropped_full, 6);
        let t = std::thread::spawn(move || write_out(rx, shared, Broken));
        while shared.queued.load(Ordering::Acquire) > 0 {
            std::thread::yield_now();
        }
        assert_eq!(sink.stats().dropped_failed, 4);
        // Once the output has failed, lines are thrown away without queueing.
        let mut l = tracing_subscriber::fmt::MakeWriter::make_writer(&sink);
        l.write_all(b"after\n").unwrap();
        drop(l);
        assert_eq!(sink.stats().dropped_failed, 5);
        assert_eq!(sink.stats().written, 0);
        drop(sink);
        t.join().unwrap();
    }
}
