//! The TPACKET_V3 ring layout (linux/if_packet.h) and checked views over its bytes.
//!
//! A ring is `tp_block_nr` blocks of `tp_block_size` bytes. Each block starts with a
//! `tpacket_block_desc` (48 bytes on every 64-bit and 32-bit Linux ABI: the `u64` sequence
//! number sits at offset 24, already 8-aligned), followed at `offset_to_first_pkt` by a chain of
//! frames. Each frame starts with a `tpacket3_hdr` (48 bytes) whose `tp_next_offset` leads to
//! the next frame of the block, and whose `tp_mac`/`tp_snaplen` locate the captured bytes.
//!
//! The kernel writes these bytes; we still treat them as untrusted (smoltcp style): a view is
//! built with `new_checked`, which verifies every offset and length against the block before
//! any accessor is used, so no accessor can panic or read outside the block afterwards.

/// `SOL_PACKET` socket option level.
pub const SOL_PACKET: i32 = 263;
/// `PACKET_ADD_MEMBERSHIP`.
pub const PACKET_ADD_MEMBERSHIP: i32 = 1;
/// `PACKET_RX_RING`.
pub const PACKET_RX_RING: i32 = 5;
/// `PACKET_STATISTICS`.
pub const PACKET_STATISTICS: i32 = 6;
/// `PACKET_VERSION`.
pub const PACKET_VERSION: i32 = 10;
/// `PACKET_FANOUT`.
pub const PACKET_FANOUT: i32 = 18;
/// `TPACKET_V3` (value of the `tpacket_versions` enum).
pub const TPACKET_V3: i32 = 2;
/// `PACKET_MR_PROMISC`.
pub const PACKET_MR_PROMISC: u16 = 1;
/// `PACKET_FANOUT_HASH`: symmetric flow hash, both directions of a flow reach the same socket.
pub const PACKET_FANOUT_HASH: u32 = 0;
/// `PACKET_FANOUT_FLAG_DEFRAG`: reassemble IP fragments before hashing, so the fragments of
/// one datagram reach the same socket as its first fragment.
pub const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
/// `ETH_P_ALL`: every protocol.
pub const ETH_P_ALL: u16 = 0x0003;

/// Block status: the kernel owns the block.
pub const TP_STATUS_KERNEL: u32 = 0;
/// Block status bit: user space owns the block (the kernel retired it).
pub const TP_STATUS_USER: u32 = 1 << 0;
/// Frame status bit: `tp_vlan_tci` holds a VLAN tag the kernel removed from the frame.
pub const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// Frame status bit: `tp_vlan_tpid` holds the removed tag's TPID.
pub const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// Alignment of frames inside a block (`TPACKET_ALIGNMENT`).
pub const TPACKET_ALIGNMENT: u32 = 16;

/// `struct tpacket_req3`, the argument of `PACKET_RX_RING` for TPACKET_V3.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TpacketReq3 {
    /// Bytes per block (a multiple of the page size).
    pub tp_block_size: u32,
    /// Number of blocks.
    pub tp_block_nr: u32,
    /// Nominal frame size (a multiple of 16); in V3 frames are variable-length and this only
    /// has to divide the block size.
    pub tp_frame_size: u32,
    /// `tp_block_size / tp_frame_size * tp_block_nr`.
    pub tp_frame_nr: u32,
    /// Block retire timeout in milliseconds: a partly filled block goes to user space after it.
    pub tp_retire_blk_tov: u32,
    /// Private area per block (unused: 0).
    pub tp_sizeof_priv: u32,
    /// Feature request word (unused: 0).
    pub tp_feature_req_word: u32,
}

/// `struct tpacket_stats_v3`, read with `PACKET_STATISTICS` (reading resets the counters).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TpacketStatsV3 {
    /// Frames received since the last read, drops included.
    pub tp_packets: u32,
    /// Frames dropped since the last read (ring full).
    pub tp_drops: u32,
    /// Times the queue froze since the last read.
    pub tp_freeze_q_cnt: u32,
}

/// Byte ranges of `struct tpacket_block_desc` (with `tpacket_hdr_v1` inside).
mod block_field {
    use std::ops::Range;
    pub const VERSION: Range<usize> = 0..4;
    pub const BLOCK_STATUS: Range<usize> = 8..12;
    pub const NUM_PKTS: Range<usize> = 12..16;
    pub const OFFSET_TO_FIRST_PKT: Range<usize> = 16..20;
    pub const BLK_LEN: Range<usize> = 20..24;
    pub const SEQ_NUM: Range<usize> = 24..32;
    /// End of `ts_last_pkt`, the last field.
    pub const HEADER_LEN: usize = 48;
}

/// Byte ranges of `struct tpacket3_hdr`.
mod frame_field {
    use std::ops::Range;
    pub const NEXT_OFFSET: Range<usize> = 0..4;
    pub const SEC: Range<usize> = 4..8;
    pub const NSEC: Range<usize> = 8..12;
    pub const SNAPLEN: Range<usize> = 12..16;
    pub const LEN: Range<usize> = 16..20;
    pub const STATUS: Range<usize> = 20..24;
    pub const MAC: Range<usize> = 24..26;
    pub const RXHASH: Range<usize> = 28..32;
    pub const VLAN_TCI: Range<usize> = 32..36;
    pub const VLAN_TPID: Range<usize> = 36..38;
    /// End of the trailing padding, the last field.
    pub const HEADER_LEN: usize = 48;
}

/// Byte ranges of the `struct sockaddr_ll` the kernel writes right after `tpacket3_hdr`
/// (at `TPACKET_ALIGN(sizeof(tpacket3_hdr))` = 48 from the frame start).
mod sll_field {
    use std::ops::Range;
    pub const HATYPE: Range<usize> = 48 + 8..48 + 10;
    pub const PKTTYPE: usize = 48 + 10;
    /// End of `sll_addr`.
    pub const END: usize = 48 + 20;
}

/// `sll_pkttype` of a frame the host sent (`PACKET_OUTGOING`).
pub const PACKET_OUTGOING: u8 = 4;
/// `sll_hatype` of the loopback device (`ARPHRD_LOOPBACK`).
pub const ARPHRD_LOOPBACK: u16 = 772;

/// Offset of `block_status` inside a block (for the atomic hand-off in `ring`).
pub const BLOCK_STATUS_OFFSET: usize = block_field::BLOCK_STATUS.start;

/// Size of `struct tpacket_block_desc`.
pub const BLOCK_HEADER_LEN: usize = block_field::HEADER_LEN;

/// Size of `struct tpacket3_hdr`.
pub const FRAME_HEADER_LEN: usize = frame_field::HEADER_LEN;

fn u32_at(b: &[u8], r: std::ops::Range<usize>) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[r]);
    u32::from_ne_bytes(a)
}

fn u16_at(b: &[u8], r: std::ops::Range<usize>) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[r]);
    u16::from_ne_bytes(a)
}

fn u64_at(b: &[u8], r: std::ops::Range<usize>) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[r]);
    u64::from_ne_bytes(a)
}

/// What is wrong with a block or frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The buffer is shorter than the header.
    #[error("{what}: buffer of {len} bytes is shorter than the {need}-byte header")]
    Short {
        /// Which header.
        what: &'static str,
        /// Buffer length.
        len: usize,
        /// Header length.
        need: usize,
    },
    /// The block descriptor's version is not TPACKET_V3 (2).
    #[error("block descriptor version {0}, expected 2 (TPACKET_V3)")]
    Version(u32),
    /// A length or offset field points outside the block.
    #[error("{field} = {value} is outside the block of {block_len} bytes")]
    OutOfBounds {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// Bytes available.
        block_len: usize,
    },
}

/// A checked view of one ring block (the descriptor and its frame area).
#[derive(Debug, Clone, Copy)]
pub struct BlockView<'a> {
    buf: &'a [u8],
}

impl<'a> BlockView<'a> {
    /// Checks the descriptor against the block's size: the header fits, `blk_len` does not
    /// exceed the block, the first frame's offset lies inside `blk_len` when there are frames.
    ///
    /// # Errors
    /// [`ViewError`] naming the first field that does not fit.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, ViewError> {
        if buf.len() < BLOCK_HEADER_LEN {
            return Err(ViewError::Short {
                what: "tpacket_block_desc",
                len: buf.len(),
                need: BLOCK_HEADER_LEN,
            });
        }
        let v = BlockView { buf };
        // The kernel writes the socket's tp_version (TPACKET_V3 = 2) into every block
        // (prb_open_block: pbd1->version = pkc1->version).
        if v.version() != TPACKET_V3 as u32 {
            return Err(ViewError::Version(v.version()));
        }
        let blk_len = v.blk_len() as usize;
        if blk_len > buf.len() {
            return Err(ViewError::OutOfBounds {
                field: "blk_len",
                value: blk_len as u64,
                block_len: buf.len(),
            });
        }
        if v.num_pkts() > 0 {
            let first = v.offset_to_first_pkt() as usize;
            if first < BLOCK_HEADER_LEN || first.saturating_add(FRAME_HEADER_LEN) > blk_len {
                return Err(ViewError::OutOfBounds {
                    field: "offset_to_first_pkt",
                    value: first as u64,
                    block_len: blk_len,
                });
            }
        }
        Ok(v)
    }

    /// Descriptor version.
    #[must_use]
    pub fn version(&self) -> u32 {
        u32_at(self.buf, block_field::VERSION)
    }
    /// Number of frames in the block.
    #[must_use]
    pub fn num_pkts(&self) -> u32 {
        u32_at(self.buf, block_field::NUM_PKTS)
    }
    /// Offset of the first frame from the start of the block.
    #[must_use]
    pub fn offset_to_first_pkt(&self) -> u32 {
        u32_at(self.buf, block_field::OFFSET_TO_FIRST_PKT)
    }
    /// Bytes of the block in use.
    #[must_use]
    pub fn blk_len(&self) -> u32 {
        u32_at(self.buf, block_field::BLK_LEN)
    }
    /// Kernel's sequence number of the block (increases by one per retired block).
    #[must_use]
    pub fn seq_num(&self) -> u64 {
        u64_at(self.buf, block_field::SEQ_NUM)
    }

    /// The used part of the block (`..blk_len`), which every frame must lie in.
    #[must_use]
    pub fn used(&self) -> &'a [u8] {
        &self.buf[..self.blk_len() as usize]
    }
}

/// A checked view of one frame: its `tpacket3_hdr` and the captured bytes.
#[derive(Debug, Clone, Copy)]
pub struct FrameHeader<'a> {
    hdr: &'a [u8],
    /// The header plus the sockaddr_ll after it, when the frame data starts past it.
    sll: Option<&'a [u8]>,
    data: &'a [u8],
    data_start: usize,
}

impl<'a> FrameHeader<'a> {
    /// Checks the frame header at `offset` of `used` (a block's used bytes): the header fits,
    /// the captured bytes `tp_mac .. tp_mac + tp_snaplen` fit, and `tp_len >= tp_snaplen`
    /// is NOT required here (the parser counts that as `BadLength`).
    ///
    /// # Errors
    /// [`ViewError`] naming the first field that does not fit.
    pub fn new_checked(used: &'a [u8], offset: usize) -> Result<Self, ViewError> {
        let end = offset.saturating_add(FRAME_HEADER_LEN);
        let Some(hdr) = used.get(offset..end) else {
            return Err(ViewError::OutOfBounds {
                field: "frame offset",
                value: offset as u64,
                block_len: used.len(),
            });
        };
        let mac = offset + usize::from(u16_at(hdr, frame_field::MAC));
        let snaplen = u32_at(hdr, frame_field::SNAPLEN) as usize;
        let Some(data) = used.get(mac..mac.saturating_add(snaplen)) else {
            return Err(ViewError::OutOfBounds {
                field: "tp_mac + tp_snaplen",
                value: (mac + snaplen) as u64,
                block_len: used.len(),
            });
        };
        let sll = if mac >= offset + sll_field::END {
            used.get(offset..offset + sll_field::END)
        } else {
            None
        };
        Ok(FrameHeader {
            hdr,
            sll,
            data,
            data_start: mac,
        })
    }

    /// Offset from this frame to the next one of the block (0 for the last frame).
    #[must_use]
    pub fn next_offset(&self) -> u32 {
        u32_at(self.hdr, frame_field::NEXT_OFFSET)
    }
    /// Capture timestamp, ns since the Unix epoch (TPACKET_V3 reports nanoseconds).
    #[must_use]
    pub fn ts_ns(&self) -> u64 {
        let sec = u64::from(u32_at(self.hdr, frame_field::SEC));
        let nsec = u64::from(u32_at(self.hdr, frame_field::NSEC));
        // Cannot overflow: (2^32 - 1) * 10^9 + (2^32 - 1) < 2^64.
        sec * 1_000_000_000 + nsec
    }
    /// Length of the frame on the wire.
    #[must_use]
    pub fn wire_len(&self) -> u32 {
        u32_at(self.hdr, frame_field::LEN)
    }
    /// Frame status bits (`TP_STATUS_*`).
    #[must_use]
    pub fn status(&self) -> u32 {
        u32_at(self.hdr, frame_field::STATUS)
    }
    /// Kernel's flow hash.
    #[must_use]
    pub fn rxhash(&self) -> u32 {
        u32_at(self.hdr, frame_field::RXHASH)
    }
    /// The VLAN tag the kernel removed from the frame, as (TPID, TCI), if any.
    #[must_use]
    pub fn stripped_vlan(&self) -> Option<(u16, u16)> {
        let status = self.status();
        if status & TP_STATUS_VLAN_VALID == 0 {
            return None;
        }
        // The TCI field is a u32 in the ABI; the tag is its low 16 bits.
        let tci = (u32_at(self.hdr, frame_field::VLAN_TCI) & 0xffff) as u16;
        let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
            u16_at(self.hdr, frame_field::VLAN_TPID)
        } else {
            0x8100
        };
        Some((tpid, tci))
    }
    /// True for a frame the host itself sent on the loopback device: the kernel shows such a
    /// frame twice (once outgoing, once incoming); libpcap skips the outgoing copy, and so do we.
    #[must_use]
    pub fn is_loopback_outgoing(&self) -> bool {
        self.sll.is_some_and(|b| {
            u16_at(b, sll_field::HATYPE) == ARPHRD_LOOPBACK
                && b[sll_field::PKTTYPE] == PACKET_OUTGOING
        })
    }

    /// Where [`FrameHeader::data`] starts in the buffer given to `new_checked` (it ends
    /// `data().len()` bytes later).
    #[must_use]
    pub fn data_start(&self) -> usize {
        self.data_start
    }

    /// The captured bytes, starting at the Ethernet header.
    #[must_use]
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// Walks the frames of a checked block. Stops (and reports) at the first frame that does
/// not check; the caller counts the rest of the block as lost to a ring error.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    used: &'a [u8],
    offset: usize,
    remaining: u32,
}

impl<'a> Frames<'a> {
    /// Frames of `block`.
    #[must_use]
    pub fn new(block: &BlockView<'a>) -> Self {
        Frames {
            used: block.used(),
            offset: block.offset_to_first_pkt() as usize,
            remaining: block.num_pkts(),
        }
    }

    /// The walk resumed at `offset` with `remaining` frames left (for a caller that keeps
    /// its position between calls instead of holding the iterator).
    #[must_use]
    pub fn at(block: &BlockView<'a>, offset: usize, remaining: u32) -> Self {
        Frames {
            used: block.used(),
            offset,
            remaining: remaining.min(block.num_pkts()),
        }
    }

    /// Offset of the next frame.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Frames not yet returned.
    #[must_use]
    pub fn remaining(&self) -> u32 {
        self.remaining
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<FrameHeader<'a>, ViewError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let f = match FrameHeader::new_checked(self.used, self.offset) {
            Ok(f) => f,
            Err(e) => {
                self.remaining = 0;
                return Some(Err(e));
            }
        };
        self.remaining -= 1;
        if self.remaining > 0 {
            let next = f.next_offset() as usize;
            // A link shorter than a header is garbage (or a loop): the frame itself is fine,
            // the next call reports the broken chain (an offset no slice can hold).
            self.offset = if next < FRAME_HEADER_LEN {
                usize::MAX
            } else {
                self.offset.saturating_add(next)
            };
        }
        Some(Ok(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a block of `size` bytes holding `frames` (payloads), laid out as the kernel does.
    fn block(size: usize, frames: &[&[u8]]) -> Vec<u8> {
        let mut b = vec![0u8; size];
        b[0..4].copy_from_slice(&2u32.to_ne_bytes());
        b[8..12].copy_from_slice(&TP_STATUS_USER.to_ne_bytes());
        b[12..16].copy_from_slice(&(frames.len() as u32).to_ne_bytes());
        let first = BLOCK_HEADER_LEN;
        b[16..20].copy_from_slice(&(first as u32).to_ne_bytes());
        b[24..32].copy_from_slice(&7u64.to_ne_bytes());
        let mut off = first;
        for (i, f) in frames.iter().enumerate() {
            let mac = FRAME_HEADER_LEN + 20 + 2; // after the header and the sockaddr_ll
            let len = mac + f.len();
            let next = if i + 1 == frames.len() {
                0
            } else {
                len.div_ceil(16) * 16
            };
            b[off..off + 4].copy_from_slice(&(next as u32).to_ne_bytes());
            b[off + 4..off + 8].copy_from_slice(&1_700_000_000u32.to_ne_bytes());
            b[off + 8..off + 12].copy_from_slice(&123_456_789u32.to_ne_bytes());
            b[off + 12..off + 16].copy_from_slice(&(f.len() as u32).to_ne_bytes());
            b[off + 16..off + 20].copy_from_slice(&(f.len() as u32 + 4).to_ne_bytes());
            b[off + 24..off + 26].copy_from_slice(&(mac as u16).to_ne_bytes());
            b[off + mac..off + mac + f.len()].copy_from_slice(f);
            off += if next == 0 { len } else { next };
        }
        b[20..24].copy_from_slice(&(off as u32).to_ne_bytes());
        b
    }

    #[test]
    fn walks_frames_of_a_well_formed_block() {
        let b = block(4096, &[b"first frame", b"second", b"third!"]);
        let v = BlockView::new_checked(&b).expect("valid block");
        assert_eq!(v.num_pkts(), 3);
        assert_eq!(v.seq_num(), 7);
        let frames: Vec<_> = Frames::new(&v)
            .collect::<Result<_, _>>()
            .expect("valid frames");
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].data(), b"first frame");
        assert_eq!(frames[1].data(), b"second");
        assert_eq!(frames[2].data(), b"third!");
        assert_eq!(frames[0].wire_len(), 15);
        assert_eq!(frames[0].ts_ns(), 1_700_000_000_123_456_789);
        assert_eq!(frames[0].stripped_vlan(), None);
    }

    #[test]
    fn refuses_lengths_outside_the_block() {
        let mut b = block(512, &[b"abc"]);
        b[20..24].copy_from_slice(&4096u32.to_ne_bytes()); // blk_len past the block
        assert!(matches!(
            BlockView::new_checked(&b),
            Err(ViewError::OutOfBounds {
                field: "blk_len",
                ..
            })
        ));

        let mut b = block(512, &[b"abc"]);
        b[16..20].copy_from_slice(&500u32.to_ne_bytes()); // first frame past blk_len
        assert!(matches!(
            BlockView::new_checked(&b),
            Err(ViewError::OutOfBounds { .. })
        ));

        let mut b = block(512, &[b"abc"]);
        let snap = BLOCK_HEADER_LEN + 12;
        b[snap..snap + 4].copy_from_slice(&10_000u32.to_ne_bytes()); // snaplen past the block
        let v = BlockView::new_checked(&b).expect("descriptor is fine");
        let r: Vec<_> = Frames::new(&v).collect();
        assert_eq!(r.len(), 1);
        assert!(r[0].is_err());

        assert!(matches!(
            BlockView::new_checked(&b[..20]),
            Err(ViewError::Short { .. })
        ));
        let mut b = block(512, &[b"abc"]);
        b[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(
            BlockView::new_checked(&b).err(),
            Some(ViewError::Version(3))
        );
    }

    #[test]
    fn a_broken_chain_ends_the_walk_with_an_error() {
        let mut b = block(1024, &[b"one", b"two"]);
        // next_offset of the first frame smaller than a header: a loop or garbage.
        b[BLOCK_HEADER_LEN..BLOCK_HEADER_LEN + 4].copy_from_slice(&4u32.to_ne_bytes());
        let v = BlockView::new_checked(&b).expect("descriptor is fine");
        let r: Vec<_> = Frames::new(&v).collect();
        assert_eq!(r.len(), 2);
        assert!(r[0].is_ok());
        assert!(r[1].is_err());
    }

    #[test]
    fn reports_a_stripped_vlan_tag() {
        let mut b = block(512, &[b"abc"]);
        let h = BLOCK_HEADER_LEN;
        let status = TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID;
        b[h + 20..h + 24].copy_from_slice(&status.to_ne_bytes());
        b[h + 32..h + 36].copy_from_slice(&0x0064u32.to_ne_bytes());
        b[h + 36..h + 38].copy_from_slice(&0x88a8u16.to_ne_bytes());
        let v = BlockView::new_checked(&b).expect("valid");
        let f = Frames::new(&v).next().expect("one").expect("valid");
        assert_eq!(f.stripped_vlan(), Some((0x88a8, 100)));
    }
}
