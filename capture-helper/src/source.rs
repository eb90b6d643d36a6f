//! Where frames come from: the [`FrameSource`] trait, a pcap/pcapng file reader and an
//! in-memory source for tests.
//!
//! A source lends one [`Frame`] at a time; the frame borrows the source's buffer and is valid
//! until the next call to [`FrameSource::next`]. Sources never allocate per frame: the file
//! reader keeps one buffer that only grows when a block larger than any before arrives.
//!
//! The file reader parses headers and records with `pcap-parser` (maintained, zero-copy,
//! streaming, both formats and both byte orders) on top of our own refillable buffer, so a
//! capture of any size is streamed with constant memory. Everything in a file is untrusted:
//! record lengths are checked against [`MAX_RECORD_LEN`] before the buffer grows, and every
//! failure is a [`SourceError`], never a panic.

use pcap_parser::nom;
use pcap_parser::pcapng::{Block, EnhancedPacketBlock};
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::PcapError;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// pcap LINKTYPE of Ethernet, the only link type the parser accepts.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Largest captured length of one legacy pcap record (Wireshark's limit for Ethernet).
pub const MAX_CAPLEN: u32 = 262_144;

/// Largest pcapng block accepted (a packet block holds at most [`MAX_CAPLEN`] bytes; other
/// blocks, e.g. name resolution or custom blocks, may be bigger).
pub const MAX_RECORD_LEN: usize = 16 * 1024 * 1024;

/// Size of the read buffer of [`PcapFileSource`]: large reads keep the syscall cost per frame low.
pub const READ_BUFFER_LEN: usize = 4 * 1024 * 1024;

/// One frame as captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The captured bytes, starting with the link-layer header.
    pub data: &'a [u8],
    /// Length of the frame on the wire (pcap `orig_len`); may exceed `data.len()` when the
    /// capture was cut by a snap length.
    pub wire_len: u32,
    /// Capture timestamp, ns since the Unix epoch.
    pub ts_ns: u64,
}

/// A source of frames: a capture file, an AF_PACKET ring or a list in memory.
pub trait FrameSource {
    /// pcap LINKTYPE of the frames ([`LINKTYPE_ETHERNET`] = 1).
    fn link_type(&self) -> u32;

    /// Snap length announced by the source (0 when unknown).
    fn snaplen(&self) -> u32 {
        0
    }

    /// The next frame, `Ok(None)` at the end. The frame borrows the source until the next call.
    ///
    /// # Errors
    /// A [`SourceError`] when the source is unreadable or corrupt; the source is then finished.
    fn next(&mut self) -> Result<Option<Frame<'_>>, SourceError>;
}

/// Errors of a frame source.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The capture file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Reading failed.
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with a pcap or pcapng header.
    #[error("not a pcap or pcapng capture file (unknown magic number {magic:#010x})")]
    NotACapture {
        /// The first four bytes, little-endian.
        magic: u32,
    },
    /// The file ends in the middle of a header or a record.
    #[error("capture file is cut short: {what} at byte offset {offset} is incomplete")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Offset of that record in the file.
        offset: u64,
    },
    /// A header or record is invalid.
    #[error("corrupt capture file at byte offset {offset}: {reason}")]
    Corrupt {
        /// Offset of the record in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The frames are not Ethernet.
    #[error("unsupported link type {link_type} ({name}): only Ethernet (1) is supported")]
    UnsupportedLinkType {
        /// The pcap LINKTYPE.
        link_type: u32,
        /// Its usual name.
        name: &'static str,
    },
}

/// Usual name of a pcap LINKTYPE (for error messages).
#[must_use]
pub fn link_type_name(link_type: u32) -> &'static str {
    match link_type {
        0 => "NULL/loopback",
        1 => "Ethernet",
        101 => "raw IP",
        105 => "IEEE 802.11",
        113 => "Linux cooked SLL",
        127 => "IEEE 802.11 radiotap",
        228 => "raw IPv4",
        229 => "raw IPv6",
        276 => "Linux cooked SLL2",
        _ => "unknown",
    }
}

/// Frames held in memory (tests, benchmarks, fuzzing).
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    link_type: u32,
    frames: Vec<(Vec<u8>, u32, u64)>,
    pos: usize,
}

impl MemorySource {
    /// An empty Ethernet source.
    #[must_use]
    pub fn new() -> Self {
        Self {
            link_type: LINKTYPE_ETHERNET,
            frames: Vec::new(),
            pos: 0,
        }
    }

    /// An empty source of another link type.
    #[must_use]
    pub fn with_link_type(link_type: u32) -> Self {
        Self {
            link_type,
            frames: Vec::new(),
            pos: 0,
        }
    }

    /// Appends a frame captured whole (`wire_len = data.len()`).
    pub fn push(&mut self, data: Vec<u8>, ts_ns: u64) {
        let wire_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.frames.push((data, wire_len, ts_ns));
    }

    /// Appends a frame with an explicit wire length.
    pub fn push_with_wire_len(&mut self, data: Vec<u8>, wire_len: u32, ts_ns: u64) {
        self.frames.push((data, wire_len, ts_ns));
    }

    /// Starts again from the first frame.
    pub fn rewind(&mut self) {
        self.pos = 0;
    }

    /// Number of frames held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when no frame is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl FrameSource for MemorySource {
    fn link_type(&self) -> u32 {
        self.link_type
    }

    fn next(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        let Some((data, wire_len, ts_ns)) = self.frames.get(self.pos) else {
            return Ok(None);
        };
        self.pos += 1;
        Ok(Some(Frame {
            data,
            wire_len: *wire_len,
            ts_ns: *ts_ns,
        }))
    }
}

/// Byte order and timestamp unit of a legacy pcap file.
#[derive(Debug, Clone, Copy)]
struct LegacyFormat {
    big_endian: bool,
    /// Multiplier from the fractional timestamp field to ns (1000 for µs, 1 for ns).
    frac_to_ns: u64,
}

/// Per-interface data of a pcapng section.
#[derive(Debug, Clone, Copy)]
struct Interface {
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp (if_tsoffset).
    offset_s: i64,
}

#[derive(Debug)]
enum Format {
    Legacy(LegacyFormat),
    Ng {
        big_endian: bool,
        /// Interfaces of the current section (re-used across sections: cleared, not freed).
        interfaces: Vec<Interface>,
    },
}

/// A pcap (µs or ns, either byte order) or pcapng capture read from any [`Read`].
///
/// Every interface must be Ethernet: an unsupported link type is refused when its header
/// (or interface description) is read, before any of its frames is returned.
#[derive(Debug)]
pub struct PcapFileSource<R> {
    reader: R,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
    format: Format,
    link_type: u32,
    snaplen: u32,
    failed: bool,
}

impl PcapFileSource<std::fs::File> {
    /// Opens a capture file.
    ///
    /// # Errors
    /// `Open` when the file cannot be opened, then as [`PcapFileSource::new`].
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let file = std::fs::File::open(path).map_err(|source| SourceError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::new(file)
    }
}

impl<R: Read> PcapFileSource<R> {
    /// Reads the file header (and, for pcapng, the first section header).
    ///
    /// # Errors
    /// `NotACapture`, `Truncated`, `Corrupt`, `UnsupportedLinkType` or `Io`.
    pub fn new(reader: R) -> Result<Self, SourceError> {
        let mut src = Self {
            reader,
            buf: vec![0; READ_BUFFER_LEN],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            format: Format::Legacy(LegacyFormat {
                big_endian: false,
                frac_to_ns: 1000,
            }),
            link_type: LINKTYPE_ETHERNET,
            snaplen: 0,
            failed: false,
        };
        src.read_file_header()?;
        Ok(src)
    }

    /// Makes at least `need` bytes available from `start`, growing the buffer up to
    /// [`MAX_RECORD_LEN`] + header. Returns false at end of file with fewer bytes.
    #[inline]
    fn fill(&mut self, need: usize) -> Result<bool, SourceError> {
        if self.end - self.start >= need {
            return Ok(true);
        }
        self.refill(need)
    }

    /// The slow half of [`PcapFileSource::fill`]: reads until `need` bytes are buffered.
    #[inline(never)]
    fn refill(&mut self, need: usize) -> Result<bool, SourceError> {
        while self.end - self.start < need {
            if self.eof {
                return Ok(false);
            }
            if self.start > 0 && self.buf.len() - self.start < need {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() < need {
                self.buf.resize(need.next_power_of_two(), 0);
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SourceError::Io(e)),
            }
        }
        Ok(true)
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    fn read_file_header(&mut self) -> Result<(), SourceError> {
        if !self.fill(4)? {
            return Err(if self.end == self.start {
                SourceError::Truncated {
                    what: "file header (empty file)",
                    offset: 0,
                }
            } else {
                SourceError::Truncated {
                    what: "file header",
                    offset: 0,
                }
            });
        }
        let a = self.avail();
        let magic = u32::from_le_bytes([a[0], a[1], a[2], a[3]]);
        match magic {
            0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => self.read_legacy_header(),
            0x0a0d_0d0a => {
                self.format = Format::Ng {
                    big_endian: false,
                    interfaces: Vec::with_capacity(4),
                };
                self.read_section_header()?;
                Ok(())
            }
            _ => Err(SourceError::NotACapture { magic }),
        }
    }

    fn read_legacy_header(&mut self) -> Result<(), SourceError> {
        if !self.fill(24)? {
            return Err(SourceError::Truncated {
                what: "pcap file header",
                offset: 0,
            });
        }
        let header = match pcap_parser::pcap::parse_pcap_header(self.avail()) {
            Ok((_, h)) => h,
            Err(e) => {
                return Err(SourceError::Corrupt {
                    offset: 0,
                    reason: format!("pcap header: {e:?}"),
                })
            }
        };
        if header.is_modified_format() {
            return Err(SourceError::Corrupt {
                offset: 0,
                reason: "modified (Kuznetzov) pcap format is not supported".into(),
            });
        }
        let frac_to_ns = if header.is_nanosecond_precision() {
            1
        } else {
            1000
        };
        self.format = Format::Legacy(LegacyFormat {
            big_endian: header.is_bigendian(),
            frac_to_ns,
        });
        // The link type is in the low 16 bits (the upper bits may carry FCS information).
        #[allow(clippy::cast_sign_loss)]
        let link_type = (header.network.0 as u32) & 0xffff;
        self.link_type = link_type;
        self.snaplen = header.snaplen;
        self.consume(24);
        check_link_type(link_type)
    }

    /// Reads a section header block at `start` and sets the byte order.
    fn read_section_header(&mut self) -> Result<(), SourceError> {
        let offset = self.offset;
        let len = self.block_len(true)?;
        let big_endian = match pcap_parser::pcapng::parse_sectionheaderblock(&self.avail()[..len]) {
            Ok((_, shb)) => shb.big_endian(),
            Err(e) => return Err(corrupt_ng(offset, "section header block", &e)),
        };
        if let Format::Ng {
            big_endian: be,
            interfaces,
        } = &mut self.format
        {
            *be = big_endian;
            interfaces.clear();
        }
        self.consume(len);
        Ok(())
    }

    /// Length of the pcapng block at `start`, checked and fully buffered.
    fn block_len(&mut self, section_header: bool) -> Result<usize, SourceError> {
        let offset = self.offset;
        if !self.fill(12)? {
            return Err(SourceError::Truncated {
                what: "pcapng block header",
                offset,
            });
        }
        let a = self.avail();
        let big_endian = if section_header {
            // The byte-order magic decides how to read the length of a section header.
            u32::from_le_bytes([a[8], a[9], a[10], a[11]]) != 0x1a2b_3c4d
        } else {
            matches!(
                self.format,
                Format::Ng {
                    big_endian: true,
                    ..
                }
            )
        };
        let raw = [a[4], a[5], a[6], a[7]];
        let len = if big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        };
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len < 12 || len % 4 != 0 || len > MAX_RECORD_LEN {
            return Err(SourceError::Corrupt {
                offset,
                reason: format!("invalid pcapng block length {len}"),
            });
        }
        if !self.fill(len)? {
            return Err(SourceError::Truncated {
                what: "pcapng block",
                offset,
            });
        }
        Ok(len)
    }

    fn next_legacy(
        &mut self,
        fmt: LegacyFormat,
    ) -> Result<Option<(usize, usize, u32, u64)>, SourceError> {
        let offset = self.offset;
        if !self.fill(16)? {
            if self.end == self.start {
                return Ok(None);
            }
            return Err(SourceError::Truncated {
                what: "pcap record header",
                offset,
            });
        }
        // The record header is four u32 fields (seconds, fraction, captured length, wire
        // length) in the file's byte order; read directly (this is the per-frame hot path,
        // the file header is decoded with pcap-parser).
        let a = self.avail();
        let field = |i: usize| {
            let raw = [a[i], a[i + 1], a[i + 2], a[i + 3]];
            if fmt.big_endian {
                u32::from_be_bytes(raw)
            } else {
                u32::from_le_bytes(raw)
            }
        };
        let (ts_sec, ts_frac, caplen, wire_len) = (field(0), field(4), field(8), field(12));
        if caplen > MAX_CAPLEN {
            return Err(SourceError::Corrupt {
                offset,
                reason: format!(
                    "record of {caplen} captured bytes exceeds the maximum of {MAX_CAPLEN}"
                ),
            });
        }
        let total = 16 + caplen as usize;
        if !self.fill(total)? {
            return Err(SourceError::Truncated {
                what: "pcap record",
                offset,
            });
        }
        let ts_ns = u64::from(ts_sec) * 1_000_000_000 + u64::from(ts_frac) * fmt.frac_to_ns;
        let data_start = self.start + 16;
        self.consume(total);
        Ok(Some((data_start, caplen as usize, wire_len, ts_ns)))
    }

    fn next_ng(&mut self) -> Result<Option<(usize, usize, u32, u64)>, SourceError> {
        loop {
            let offset = self.offset;
            if !self.fill(1)? {
                return Ok(None);
            }
            if !self.fill(8)? {
                return Err(SourceError::Truncated {
                    what: "pcapng block header",
                    offset,
                });
            }
            let a = self.avail();
            if a[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
                self.read_section_header()?;
                continue;
            }
            let len = self.block_len(false)?;
            let Format::Ng {
                big_endian,
                interfaces,
            } = &mut self.format
            else {
                return Ok(None);
            };
            let block_bytes = &self.buf[self.start..self.start + len];
            let parsed = if *big_endian {
                pcap_parser::pcapng::parse_block_be(block_bytes)
            } else {
                pcap_parser::pcapng::parse_block_le(block_bytes)
            };
            let block = match parsed {
                Ok((_, b)) => b,
                Err(e) => return Err(corrupt_ng(offset, "pcapng block", &e)),
            };
            let base = self.buf.as_ptr() as usize;
            let mut result = None;
            match block {
                Block::InterfaceDescription(idb) => {
                    #[allow(clippy::cast_sign_loss)]
                    let link_type = (idb.linktype.0 as u32) & 0xffff;
                    let Some(resolution) = idb.ts_resolution() else {
                        return Err(SourceError::Corrupt {
                            offset,
                            reason: format!(
                                "invalid interface timestamp resolution {:#x}",
                                idb.if_tsresol
                            ),
                        });
                    };
                    interfaces.push(Interface {
                        resolution,
                        offset_s: idb.ts_offset(),
                    });
                    if interfaces.len() == 1 {
                        self.link_type = link_type;
                        self.snaplen = idb.snaplen;
                    }
                    check_link_type(link_type)?;
                }
                Block::EnhancedPacket(epb) => {
                    let Some(iface) = interfaces.get(epb.if_id as usize).copied() else {
                        return Err(SourceError::Corrupt {
                            offset,
                            reason: format!("packet for undeclared interface {}", epb.if_id),
                        });
                    };
                    let data = epb.packet_data();
                    if data.len() < epb.caplen as usize {
                        return Err(SourceError::Corrupt {
                            offset,
                            reason: "enhanced packet block shorter than its captured length".into(),
                        });
                    }
                    let ts_ns = epb_ts_ns(&epb, iface);
                    result = Some((
                        data.as_ptr() as usize - base,
                        data.len(),
                        epb.origlen,
                        ts_ns,
                    ));
                }
                Block::SimplePacket(spb) => {
                    if interfaces.is_empty() {
                        return Err(SourceError::Corrupt {
                            offset,
                            reason: "simple packet before any interface".into(),
                        });
                    }
                    // A simple packet block has no timestamp.
                    let data = spb.packet_data();
                    result = Some((data.as_ptr() as usize - base, data.len(), spb.origlen, 0));
                }
                _ => {}
            }
            self.consume(len);
            if result.is_some() {
                return Ok(result);
            }
        }
    }
}

fn epb_ts_ns(epb: &EnhancedPacketBlock<'_>, iface: Interface) -> u64 {
    let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
    let secs = raw / iface.resolution;
    let frac = raw % iface.resolution;
    // frac < resolution, so frac * 1e9 / resolution fits when computed in u128.
    let frac_ns =
        u64::try_from(u128::from(frac) * 1_000_000_000 / u128::from(iface.resolution)).unwrap_or(0);
    let secs = secs.saturating_add_signed(iface.offset_s);
    secs.saturating_mul(1_000_000_000).saturating_add(frac_ns)
}

fn check_link_type(link_type: u32) -> Result<(), SourceError> {
    if link_type == LINKTYPE_ETHERNET {
        Ok(())
    } else {
        Err(SourceError::UnsupportedLinkType {
            link_type,
            name: link_type_name(link_type),
        })
    }
}

fn corrupt_ng(offset: u64, what: &str, e: &nom::Err<PcapError<&[u8]>>) -> SourceError {
    let reason = match e {
        nom::Err::Incomplete(_) => format!("{what} is shorter than its own length fields"),
        nom::Err::Error(pe) | nom::Err::Failure(pe) => match pe {
            PcapError::NomError(_, kind) => format!("{what}: invalid ({kind:?})"),
            PcapError::HeaderNotRecognized => format!("{what}: header not recognized"),
            other => format!("{what}: {other:?}"),
        },
    };
    SourceError::Corrupt { offset, reason }
}

impl<R: Read> FrameSource for PcapFileSource<R> {
    fn link_type(&self) -> u32 {
        self.link_type
    }

    fn snaplen(&self) -> u32 {
        self.snaplen
    }

    fn next(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        if self.failed {
            return Ok(None);
        }
        let res = match &self.format {
            Format::Legacy(fmt) => {
                let fmt = *fmt;
                self.next_legacy(fmt)
            }
            Format::Ng { .. } => self.next_ng(),
        };
        match res {
            Ok(Some((start, len, wire_len, ts_ns))) => Ok(Some(Frame {
                data: &self.buf[start..start + len],
                wire_len,
                ts_ns,
            })),
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}
