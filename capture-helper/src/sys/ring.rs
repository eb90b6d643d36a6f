//! The mmap'd TPACKET_V3 receive ring and the block ownership hand-off.
//!
//! Protocol (Documentation/networking/packet_mmap.rst): the kernel fills block `i`, then
//! stores `TP_STATUS_USER` into its `block_status` (with a write barrier). From then on the
//! kernel does not touch the block until user space stores `TP_STATUS_KERNEL` back. Blocks are
//! handed over in ring order, so user space only ever looks at the next block.
//!
//! Here: an **acquire** load of `block_status` that sees `TP_STATUS_USER` makes the kernel's
//! writes to the block visible and gives us the block ([`Ring::try_acquire`]). Slices of it
//! ([`Ring::held_block`]) borrow the ring immutably, so they all end before
//! [`Ring::release`] (`&mut self`) does a **release** store of `TP_STATUS_KERNEL` that hands
//! the block back.

use super::packet::PacketSocket;
use super::tpacket::{
    BlockView, TpacketReq3, ViewError, BLOCK_STATUS_OFFSET, TP_STATUS_KERNEL, TP_STATUS_USER,
};
use memmap2::{MmapOptions, MmapRaw};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

/// The mapped ring of one socket.
#[derive(Debug)]
pub struct Ring {
    map: MmapRaw,
    block_size: usize,
    block_nr: usize,
    next: usize,
    held: bool,
}

impl Ring {
    /// Maps the ring set up by `PACKET_RX_RING` with `req` on `sock`.
    ///
    /// # Errors
    /// The mmap error; `InvalidInput` for a geometry whose size overflows or whose block
    /// size cannot hold a block descriptor.
    pub fn map(sock: &PacketSocket, req: &TpacketReq3) -> io::Result<Self> {
        let block_size = req.tp_block_size as usize;
        let block_nr = req.tp_block_nr as usize;
        let len = block_size
            .checked_mul(block_nr)
            .filter(|l| *l > 0 && block_size >= super::tpacket::BLOCK_HEADER_LEN)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "ring geometry"))?;
        let map = MmapOptions::new().len(len).map_raw(sock.raw_fd())?;
        if map.len() != len || map.as_ptr().align_offset(std::mem::align_of::<AtomicU32>()) != 0 {
            return Err(io::Error::other(
                "mapping has an unexpected length or alignment",
            ));
        }
        Ok(Ring {
            map,
            block_size,
            block_nr,
            next: 0,
            held: false,
        })
    }

    /// Number of blocks.
    #[must_use]
    pub fn block_nr(&self) -> usize {
        self.block_nr
    }

    fn status_of(&self, i: usize) -> &AtomicU32 {
        debug_assert!(i < self.block_nr);
        // SAFETY: block `i` lies inside the mapping (`i < block_nr`, the mapping is
        // `block_size * block_nr` bytes, checked in `map`), and `block_status` sits at offset 8
        // of the block: the pointer is in bounds and 4-aligned (the mapping is page-aligned,
        // block_size is a multiple of the page size). The kernel and we only ever access this
        // word atomically (the kernel with barriers + WRITE_ONCE/READ_ONCE), and the mapping
        // lives as long as `self`, which bounds the returned reference.
        unsafe {
            let p = self
                .map
                .as_mut_ptr()
                .add(i * self.block_size + BLOCK_STATUS_OFFSET);
            AtomicU32::from_ptr(p.cast::<u32>())
        }
    }

    /// Takes the next block in ring order if the kernel has handed it to user space.
    /// Returns whether a block is held afterwards (a block already held stays held).
    pub fn try_acquire(&mut self) -> bool {
        if self.held {
            return true;
        }
        // Acquire: pairs with the kernel's smp_wmb before it sets TP_STATUS_USER, so every
        // byte it wrote into the block is visible to the reads that follow.
        if self.status_of(self.next).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return false;
        }
        self.held = true;
        true
    }

    /// The bytes of the held block, if any. The borrow ends before [`Ring::release`] (which
    /// takes `&mut self`) hands the block back.
    #[must_use]
    pub fn held_block(&self) -> Option<&[u8]> {
        if !self.held {
            return None;
        }
        // SAFETY: `next < block_nr`, so `[next*block_size, (next+1)*block_size)` lies inside
        // the mapping (size checked in `map`), which lives as long as `self`. User space owns
        // this block from the acquire load in `try_acquire` that saw TP_STATUS_USER until
        // `release` stores TP_STATUS_KERNEL; the kernel does not write to a block in
        // TP_STATUS_USER, and `release` needs `&mut self`, so no slice returned here is alive
        // when the block goes back: the bytes do not change while the slice exists.
        Some(unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().add(self.next * self.block_size),
                self.block_size,
            )
        })
    }

    /// Hands the held block back to the kernel and moves to the next block of the ring.
    pub fn release(&mut self) {
        if !self.held {
            return;
        }
        // Release: every read of the block happens-before the kernel sees it as its own again.
        self.status_of(self.next)
            .store(TP_STATUS_KERNEL, Ordering::Release);
        self.held = false;
        self.next = (self.next + 1) % self.block_nr;
    }
}

/// A checked view of a held block.
///
/// # Errors
/// [`ViewError`] when the descriptor does not fit the block.
pub fn view(block: &[u8]) -> Result<BlockView<'_>, ViewError> {
    BlockView::new_checked(block)
}
