//! SIGTERM/SIGINT handling that keeps working under seccomp: the handler only stores to a
//! static atomic (async-signal-safe, no syscall); returning from it needs `rt_sigreturn`,
//! which the allowlist permits. The handler is installed before seccomp (sigaction is not
//! on the list).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGTERM and SIGINT (without SA_RESTART, so a blocking poll
/// returns EINTR and the loop sees the flag at once).
///
/// # Errors
/// The sigaction error.
pub fn install_stop_handlers() -> io::Result<()> {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: all-zero is a valid sigaction (empty mask, no flags).
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        sa.sa_flags = 0;
        // SAFETY: `sa` is initialised and live for the call; the handler is an extern "C" fn
        // that only performs an atomic store, which is async-signal-safe; no old action is
        // requested (null).
        let rc = unsafe { libc::sigaction(sig, &raw const sa, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether SIGTERM or SIGINT has arrived.
#[must_use]
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Sets the stop flag from inside the process (capture threads that fail).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}
