//! A counting global allocator, for tests and benchmarks that prove the hot path allocates
//! nothing per packet (`capture-helper/tests/no_alloc.rs`). It lives here because
//! implementing `GlobalAlloc` is `unsafe`, and this module is where the project's unsafe
//! code is fenced. Install it with `#[global_allocator]` in a test binary; the production
//! binaries use the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to [`System`] and counts allocations (and reallocations) made by the current
/// thread between [`CountingAllocator::start`] and [`CountingAllocator::stop`]. The count is
/// per thread, so tests running in parallel do not see each other's allocations.
#[derive(Debug, Default)]
pub struct CountingAllocator {
    _private: (),
}

thread_local! {
    // Const-initialised, no destructor: touching them never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

impl CountingAllocator {
    /// A counter at zero.
    #[must_use]
    pub const fn new() -> Self {
        CountingAllocator { _private: () }
    }

    /// Resets the counter and starts counting this thread's allocations.
    pub fn start(&self) {
        ALLOCATIONS.with(|a| a.set(0));
        COUNTING.with(|c| c.set(true));
    }

    /// Stops counting and returns the allocations counted since [`Self::start`].
    pub fn stop(&self) -> u64 {
        COUNTING.with(|c| c.set(false));
        ALLOCATIONS.with(Cell::get)
    }

    fn note(&self) {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// GlobalAlloc contract holds exactly as for `System`; the counter and the flag are
// const-initialised thread-locals (touching it cannot recurse into the allocator).
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (all allocations go there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note();
        // SAFETY: `ptr`/`layout` come from `System`, as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
