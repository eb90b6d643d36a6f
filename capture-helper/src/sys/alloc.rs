//! A counting global allocator, for tests and benchmarks that prove the hot path allocates
//! nothing per packet (`capture-helper/tests/no_alloc.rs`). It lives here because
//! implementing `GlobalAlloc` is `unsafe`, and this module is where the project's unsafe
//! code is fenced. Install it with `#[global_allocator]` in a test binary; the production
//! binaries use the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Forwards to [`System`] and counts allocations (and reallocations) made by the current
/// thread between [`CountingAllocator::start`] and [`CountingAllocator::stop`].
#[derive(Debug, Default)]
pub struct CountingAllocator {
    allocations: AtomicU64,
}

thread_local! {
    // Const-initialised, no destructor: reading it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

impl CountingAllocator {
    /// A counter at zero.
    #[must_use]
    pub const fn new() -> Self {
        CountingAllocator {
            allocations: AtomicU64::new(0),
        }
    }

    /// Resets the counter and starts counting this thread's allocations.
    pub fn start(&self) {
        self.allocations.store(0, Ordering::Relaxed);
        COUNTING.with(|c| c.set(true));
    }

    /// Stops counting and returns the allocations counted since [`Self::start`].
    pub fn stop(&self) -> u64 {
        COUNTING.with(|c| c.set(false));
        self.allocations.load(Ordering::Relaxed)
    }

    fn note(&self) {
        if COUNTING.with(Cell::get) {
            self.allocations.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// GlobalAlloc contract holds exactly as for `System`; the counter is a relaxed atomic and the
// thread-local flag is const-initialised (touching it cannot recurse into the allocator).
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
