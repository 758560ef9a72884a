//! Offline ports: frames come from a pcap or pcapng file and go to a pcap file.
//!
//! The replay driver owns the clock. It asks each input port for the timestamp of its
//! next frame ([`PcapPort::next_time`]), sets every port's clock with
//! [`PcapPort::set_clock`], and a port then releases only the frames stamped at or
//! before that clock. Sent frames are written stamped with the clock, in nanoseconds.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{Endianness, TsResolution};

use crate::buf::{BufPool, Burst, HeapBuf, HeapPool, PacketBuf};
use crate::time::Instant;

use super::{Port, PortStats};

/// Why a pcap file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The file could not be opened or created.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a pcap or pcapng capture, or is damaged.
    #[error("{path}: not a readable pcap/pcapng file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        reason: String,
    },
    /// The capture's link type is not Ethernet.
    #[error("{path}: link type {linktype} is not Ethernet; capture on an Ethernet interface")]
    LinkType {
        /// The file.
        path: PathBuf,
        /// The link type found.
        linktype: String,
    },
}

enum Reader {
    Pcap(PcapReader<BufReader<File>>),
    PcapNg {
        reader: PcapNgReader<BufReader<File>>,
        /// Nanoseconds per timestamp unit, per interface.
        units: Vec<u64>,
    },
}

struct Input {
    path: PathBuf,
    reader: Reader,
    next: Option<(Instant, Vec<u8>)>,
    error: Option<String>,
}

impl Input {
    fn open(path: &Path) -> Result<Input, PcapError> {
        let io = |source| PcapError::Io {
            path: path.to_path_buf(),
            source,
        };
        let format = |reason: String| PcapError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let mut magic = [0u8; 4];
        File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .map_err(io)?;
        let file = BufReader::new(File::open(path).map_err(io)?);
        let reader = if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
            let reader = PcapNgReader::new(file).map_err(|e| format(e.to_string()))?;
            Reader::PcapNg {
                reader,
                units: Vec::new(),
            }
        } else {
            let reader = PcapReader::new(file).map_err(|e| format(e.to_string()))?;
            let dl = reader.header().datalink;
            if dl != DataLink::ETHERNET {
                return Err(PcapError::LinkType {
                    path: path.to_path_buf(),
                    linktype: format!("{dl:?}"),
                });
            }
            Reader::Pcap(reader)
        };
        let mut input = Input {
            path: path.to_path_buf(),
            reader,
            next: None,
            error: None,
        };
        input.advance()?;
        Ok(input)
    }

    /// Reads the next frame into `self.next`. A damaged file ends the input; the error is
    /// kept for the replay summary, except at the very start where it is returned.
    fn advance(&mut self) -> Result<(), PcapError> {
        self.next = None;
        loop {
            let item = match &mut self.reader {
                Reader::Pcap(r) => match r.next_packet() {
                    None => return Ok(()),
                    Some(Ok(p)) => Some((Instant::from_duration(p.timestamp), p.data.into_owned())),
                    Some(Err(e)) => return self.fail(e.to_string()),
                },
                Reader::PcapNg { reader, units } => match reader.next_block() {
                    None => return Ok(()),
                    Some(Err(e)) => return self.fail(e.to_string()),
                    Some(Ok(Block::InterfaceDescription(idb))) => {
                        if idb.linktype != DataLink::ETHERNET {
                            return Err(PcapError::LinkType {
                                path: self.path.clone(),
                                linktype: format!("{:?}", idb.linktype),
                            });
                        }
                        units.push(ns_per_unit(&idb.options));
                        None
                    }
                    Some(Ok(Block::EnhancedPacket(epb))) => {
                        // pcap-file reports the raw timestamp as nanoseconds; scale it by
                        // the interface's if_tsresol (microseconds by default).
                        let unit = units
                            .get(epb.interface_id as usize)
                            .copied()
                            .unwrap_or(1000);
                        let raw = epb.timestamp.as_nanos() as u64;
                        Some((Instant(raw.saturating_mul(unit)), epb.data.into_owned()))
                    }
                    Some(Ok(_)) => None,
                },
            };
            if let Some(item) = item {
                self.next = Some(item);
                return Ok(());
            }
        }
    }

    fn fail(&mut self, reason: String) -> Result<(), PcapError> {
        self.error = Some(format!("{}: {reason}", self.path.display()));
        Ok(())
    }
}

fn ns_per_unit(options: &[InterfaceDescriptionOption<'_>]) -> u64 {
    for o in options {
        if let InterfaceDescriptionOption::IfTsResol(r) = o {
            return if r & 0x80 == 0 {
                // 10^-r seconds
                10u64
                    .checked_pow(9u32.saturating_sub(*r as u32))
                    .unwrap_or(1)
            } else {
                // 2^-(r & 0x7f) seconds: rounded to whole nanoseconds.
                (1_000_000_000u64 >> (r & 0x7f).min(63)).max(1)
            };
        }
    }
    1000
}

/// A port reading one capture file and/or writing another.
pub struct PcapPort {
    input: Option<Input>,
    output: Option<PcapWriter<BufWriter<File>>>,
    output_path: Option<PathBuf>,
    clock: Instant,
    stats: PortStats,
    write_error: Option<String>,
    /// Frames written.
    pub written: u64,
}

impl PcapPort {
    /// A port that reads `input` (if any) and writes `output` (if any).
    pub fn open(input: Option<&Path>, output: Option<&Path>) -> Result<PcapPort, PcapError> {
        let input = input.map(Input::open).transpose()?;
        let output_writer = match output {
            None => None,
            Some(path) => {
                let f = File::create(path).map_err(|source| PcapError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                let header = PcapHeader {
                    ts_resolution: TsResolution::NanoSecond,
                    endianness: Endianness::Little,
                    snaplen: 65535,
                    ..PcapHeader::default()
                };
                Some(
                    PcapWriter::with_header(BufWriter::new(f), header).map_err(|e| {
                        PcapError::Format {
                            path: path.to_path_buf(),
                            reason: e.to_string(),
                        }
                    })?,
                )
            }
        };
        Ok(PcapPort {
            input,
            output: output_writer,
            output_path: output.map(Path::to_path_buf),
            clock: Instant::ZERO,
            stats: PortStats::default(),
            write_error: None,
            written: 0,
        })
    }

    /// Timestamp of the next frame to receive, `None` at the end of the input.
    pub fn next_time(&self) -> Option<Instant> {
        self.input.as_ref()?.next.as_ref().map(|(t, _)| *t)
    }

    /// Sets the port's clock: frames stamped up to it are released, frames sent are
    /// stamped with it.
    pub fn set_clock(&mut self, now: Instant) {
        self.clock = now;
    }

    /// Flushes the output file and reports the first read or write error, if any.
    pub fn finish(&mut self) -> Result<(), String> {
        if let Some(w) = self.output.take() {
            use std::io::Write;
            if let Err(e) = w.into_writer().flush() {
                let path = self.output_path.as_deref().unwrap_or(Path::new("?"));
                self.write_error
                    .get_or_insert(format!("{}: {e}", path.display()));
            }
        }
        if let Some(e) = self.input.as_ref().and_then(|i| i.error.clone()) {
            return Err(e);
        }
        match self.write_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for PcapPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PcapPort(clock {:?}, written {})",
            self.clock, self.written
        )
    }
}

impl Port for PcapPort {
    type Pool = HeapPool;

    fn rx_burst(&mut self, pool: &mut HeapPool, out: &mut Burst<HeapBuf>, max: usize) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        let room = max.min(out.remaining_capacity());
        let mut taken = 0;
        while taken < room {
            match &input.next {
                Some((t, _)) if *t <= self.clock => {}
                _ => break,
            }
            let Some(mut buf) = pool.alloc() else {
                self.stats.rx_no_buffer += 1;
                break;
            };
            let (_, frame) = input.next.take().unwrap_or_default();
            if buf.fill(&frame) {
                out.push(buf);
                taken += 1;
            } else {
                self.stats.rx_too_big += 1;
                pool.free(buf);
            }
            // A read error ends the input; it is reported by `finish`.
            let _ = input.advance();
        }
    }

    fn tx_burst(&mut self, pool: &mut HeapPool, pkts: &mut Burst<HeapBuf>) -> usize {
        let n = pkts.len();
        for b in pkts.drain(..) {
            if let Some(w) = self.output.as_mut() {
                let p = PcapPacket::new(self.clock.as_duration(), b.len() as u32, b.data());
                match w.write_packet(&p) {
                    Ok(_) => self.written += 1,
                    Err(e) => {
                        self.stats.tx_errors += 1;
                        self.write_error.get_or_insert(e.to_string());
                    }
                }
            }
            pool.free(b);
        }
        n
    }

    fn stats(&mut self) -> PortStats {
        self.stats
    }
}

/// Reads every frame of a capture as `(timestamp, bytes)`; for tests and tools.
pub fn read_all(path: &Path) -> Result<Vec<(Instant, Vec<u8>)>, PcapError> {
    let mut input = Input::open(path)?;
    let mut out = Vec::new();
    while let Some(item) = input.next.take() {
        out.push(item);
        input.advance()?;
    }
    match input.error {
        Some(reason) => Err(PcapError::Format {
            path: path.to_path_buf(),
            reason,
        }),
        None => Ok(out),
    }
}

/// Writes `frames` as a nanosecond pcap; for tests and tools.
pub fn write_all(path: &Path, frames: &[(Instant, Vec<u8>)]) -> Result<(), PcapError> {
    let mut pool = HeapPool::new(1);
    let mut port = PcapPort::open(None, Some(path))?;
    for (t, bytes) in frames {
        port.set_clock(*t);
        let Some(mut b) = pool.alloc() else { break };
        b.fill(bytes);
        let mut burst = Burst::new();
        burst.push(b);
        port.tx_burst(&mut pool, &mut burst);
    }
    port.finish().map_err(|reason| PcapError::Format {
        path: path.to_path_buf(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_frames_by_clock_and_stamps_output() {
        let dir = tempfile::tempdir().unwrap();
        let inp = dir.path().join("in.pcap");
        let outp = dir.path().join("out.pcap");
        write_all(
            &inp,
            &[
                (Instant(1_000), vec![1; 60]),
                (Instant(2_000), vec![2; 60]),
                (Instant(2_000), vec![3; 60]),
            ],
        )
        .unwrap();

        let mut pool = HeapPool::new(8);
        let mut port = PcapPort::open(Some(&inp), Some(&outp)).unwrap();
        let mut burst = Burst::new();
        assert_eq!(port.next_time(), Some(Instant(1_000)));
        port.set_clock(Instant(500));
        port.rx_burst(&mut pool, &mut burst, 32);
        assert!(burst.is_empty());
        port.set_clock(Instant(1_000));
        port.rx_burst(&mut pool, &mut burst, 32);
        assert_eq!(burst.len(), 1);
        assert_eq!(port.next_time(), Some(Instant(2_000)));
        port.set_clock(Instant(2_000));
        port.rx_burst(&mut pool, &mut burst, 32);
        assert_eq!(burst.len(), 3);
        assert_eq!(port.next_time(), None);
        port.tx_burst(&mut pool, &mut burst);
        port.finish().unwrap();
        assert_eq!(pool.available(), 8);

        let back = read_all(&outp).unwrap();
        assert_eq!(back.len(), 3);
        assert!(back.iter().all(|(t, _)| *t == Instant(2_000)));
        assert_eq!(back[2].1, vec![3; 60]);
    }

    #[test]
    fn rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.pcap");
        std::fs::write(&p, b"this is not a capture file").unwrap();
        let e = PcapPort::open(Some(&p), None).unwrap_err();
        assert!(e.to_string().contains("not a readable pcap"), "{e}");
    }
}
