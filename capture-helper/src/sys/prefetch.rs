//! Software prefetch: a hint to the CPU that memory will be read soon.
//!
//! Offline flow extraction looks up one random flow-table slot and entry per packet; issuing
//! the loads of a whole batch of packets first hides most of the cache-miss latency. A
//! prefetch never faults and has no visible effect besides timing, so the wrappers take a
//! reference (memory that is certainly valid) and are safe to call.

/// Hints that the cache lines covering `r`'s first `bytes` bytes (at most the size of `T`)
/// will be read soon. A no-op on targets without a prefetch instruction.
#[inline(always)]
pub fn prefetch_read<T>(r: &T, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let base = core::ptr::from_ref(r).cast::<i8>();
        let len = bytes.min(core::mem::size_of::<T>()).max(1);
        let mut off = 0;
        while off < len {
            // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has (it is part of
            // the x86_64 baseline target features); the address lies inside `*r`, a live
            // reference, and a prefetch is only a hint: it never faults or writes.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (r, bytes);
    }
}

/// Hints that the cache lines covering `bytes` will be read soon (every 64-byte line).
#[inline(always)]
pub fn prefetch_bytes(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let base = bytes.as_ptr().cast::<i8>();
        let mut off = 0;
        while off < bytes.len() {
            // SAFETY: as in `prefetch_read`: SSE is baseline on x86_64; `off` is inside the
            // live slice `bytes`, and a prefetch never faults or writes.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = bytes;
    }
}
