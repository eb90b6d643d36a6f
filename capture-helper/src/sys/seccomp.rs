//! The seccomp allowlist: compiled from the reviewed JSON file, applied to every thread.

use seccompiler::{BpfProgram, TargetArch};
use std::io;

/// The reviewed policy file (`capture-helper/seccomp/netwatch-capture.json`), compiled in.
pub const POLICY_JSON: &str = include_str!("../../seccomp/netwatch-capture.json");

/// Name of the filter inside the policy file.
pub const FILTER_NAME: &str = "netwatch-capture";

/// Why the filter could not be built or applied.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// This CPU architecture has no policy.
    #[error("no seccomp policy for architecture {0}")]
    UnsupportedArch(&'static str),
    /// The JSON does not compile (a typo in the reviewed file).
    #[error("compiling the seccomp policy: {0}")]
    Compile(String),
    /// The compiled program is empty or over the kernel's 4096 instructions.
    #[error("seccomp program has {0} instructions (must be 1..=4096)")]
    Size(usize),
    /// The kernel refused the filter.
    #[error("applying the seccomp filter: {0}")]
    Apply(io::Error),
}

/// Keeps glibc's allocator from opening a file under seccomp.
///
/// The first time glibc shrinks the heap of a thread's malloc arena it opens
/// `/proc/sys/vm/overcommit_memory` (`check_may_shrink_heap`); under the allowlist `openat`
/// kills the process with SIGSYS. A capture thread reaches that point when its arena's top
/// grows past the trim threshold and is freed again, e.g. a batch of records with a small
/// `--max-flows` table (seen with `--max-flows 4096` under `bench/live.sh`). With the trim
/// threshold at its maximum, arenas never shrink, so the file is never opened; the memory a
/// thread frees stays in its arena for the next interval (the helper's working set is
/// steady), and large blocks are still mmapped and unmapped as before.
///
/// Returns whether the setting took effect (always `true` outside glibc: nothing to do).
pub fn keep_allocator_off_the_file_system() -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt takes two integers and only changes allocator parameters; it runs
        // before the capture threads exist, and glibc serialises it with the arenas' locks.
        unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        true
    }
}

/// Compiles the policy for this architecture. Done before the privilege drop so that a bad
/// policy fails the start, not the capture.
///
/// # Errors
/// [`SeccompError`] when the architecture is unsupported or the policy does not compile.
pub fn compile() -> Result<BpfProgram, SeccompError> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => TargetArch::x86_64,
        other => return Err(SeccompError::UnsupportedArch(other)),
    };
    let mut map = seccompiler::compile_from_json(POLICY_JSON.as_bytes(), arch)
        .map_err(|e| SeccompError::Compile(e.to_string()))?;
    let prog = map
        .remove(FILTER_NAME)
        .ok_or_else(|| SeccompError::Compile(format!("no filter named {FILTER_NAME}")))?;
    if prog.is_empty() || prog.len() > 4096 {
        return Err(SeccompError::Size(prog.len()));
    }
    Ok(prog)
}

/// Applies the filter to every thread of the process (SECCOMP_FILTER_FLAG_TSYNC), so capture
/// threads spawned before this point are confined too. Needs no_new_privs (set before).
///
/// # Errors
/// [`SeccompError::Apply`] with the OS error.
pub fn apply(prog: &BpfProgram) -> Result<(), SeccompError> {
    seccompiler::apply_filter_all_threads(prog)
        .map_err(|e| SeccompError::Apply(io::Error::other(e.to_string())))
}

/// Test-only hook (`NETWATCH_TEST_FORBIDDEN_SYSCALL=1`): calls `mkdirat`, which the policy
/// does not allow, so the kernel kills the process with SIGSYS. Without seccomp it creates
/// `path` (the test checks that it does not exist afterwards).
pub fn forbidden_syscall(path: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: mkdirat reads the NUL-terminated `path`, alive for the call; no other memory.
    let rc = unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, path.as_ptr(), 0o700) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Test-only hook (`NETWATCH_TEST_FORBIDDEN_SYSCALL=inject`): writes a frame-sized buffer
/// to the first packet socket's descriptor, which the policy refuses (SIGSYS). Without
/// seccomp the kernel would send it out of the interface.
pub fn write_to_packet_socket() -> io::Result<()> {
    let frame = [0xffu8; 60];
    // SAFETY: write(2) reads `frame.len()` bytes from a live stack buffer; the descriptor is
    // a plain integer (an invalid one only yields EBADF).
    let rc = unsafe {
        libc::write(
            super::packet::PACKET_FD_BASE,
            frame.as_ptr().cast(),
            frame.len(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_compiles_and_every_entry_has_a_comment() {
        let prog = compile().expect("policy compiles");
        assert!(!prog.is_empty());
        let v: serde_json::Value = serde_json::from_str(POLICY_JSON).expect("valid JSON");
        let filter = v[FILTER_NAME]["filter"].as_array().expect("filter array");
        assert!(filter.len() > 10);
        for rule in filter {
            let name = rule["syscall"].as_str().expect("syscall name");
            let comment = rule["comment"].as_str().unwrap_or("");
            assert!(comment.len() > 10, "entry {name} lacks a reviewed comment");
            for arg in rule["args"].as_array().into_iter().flatten() {
                assert!(
                    arg["comment"].as_str().is_some_and(|c| !c.is_empty()),
                    "{name}: condition without comment"
                );
            }
        }
        assert_eq!(v[FILTER_NAME]["mismatch_action"], "kill_process");
        for forbidden in [
            "execve",
            "execveat",
            "clone",
            "clone3",
            "fork",
            "vfork",
            "open",
            "openat",
            "mkdirat",
            "ptrace",
            "bind",
            "setsockopt_any",
        ] {
            assert!(
                !filter.iter().any(|r| r["syscall"] == forbidden),
                "{forbidden} must not be on the allowlist"
            );
        }
    }
}
