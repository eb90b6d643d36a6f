//! Giving up privileges: capabilities, the user switch and `no_new_privs`.
//!
//! Order inside [`drop_all`] (each step needs what a later one removes):
//! 1. ambient and inheritable sets cleared (needs nothing);
//! 2. bounding set cleared: `PR_CAPBSET_DROP` needs CAP_SETPCAP in the *effective* set, so it
//!    must come before the effective set is cleared;
//! 3. user switch when root: `setgroups`/`setgid` need CAP_SETGID and `setuid` needs
//!    CAP_SETUID, so it comes before the effective set is cleared; the kernel clears
//!    permitted and effective when the uid leaves 0 (no SECBIT_KEEP_CAPS);
//! 4. effective and permitted cleared (for the setcap'd non-root case, where step 3 is
//!    skipped), then everything is read back and verified.

use caps::{CapSet, Capability};
use std::io;

/// What [`drop_all`] did, for the startup log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropReport {
    /// The bounding set could not be cleared for lack of CAP_SETPCAP (harmless once
    /// no_new_privs is set: file capabilities are then ignored on execve, and seccomp
    /// forbids execve anyway). Logged as a warning.
    pub bounding_kept: bool,
    /// Uid/gid switched to, if the process was root.
    pub switched_to: Option<(u32, u32)>,
}

/// Why dropping privileges failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// A capability call failed.
    #[error("clearing the {set} capability set: {msg}")]
    Caps {
        /// Which set.
        set: &'static str,
        /// The caps crate's message.
        msg: String,
    },
    /// setgroups/setgid/setuid failed.
    #[error("switching to uid {uid} gid {gid}: {source}")]
    SwitchUser {
        /// Target uid.
        uid: u32,
        /// Target gid.
        gid: u32,
        /// The OS error.
        source: io::Error,
    },
    /// The process is root and no unprivileged user was given.
    #[error("running as root: give --user NAME (an unprivileged user) so the helper does not keep uid 0")]
    RootWithoutUser,
    /// After dropping, a set is still not empty.
    #[error("capability set {set} still holds {caps} after clearing")]
    NotEmpty {
        /// Which set.
        set: &'static str,
        /// What it holds.
        caps: String,
    },
    /// prctl(PR_SET_NO_NEW_PRIVS) failed.
    #[error("prctl(PR_SET_NO_NEW_PRIVS): {0}")]
    NoNewPrivs(io::Error),
}

fn caps_err(set: &'static str) -> impl Fn(caps::errors::CapsError) -> PrivilegeError {
    move |e| PrivilegeError::Caps {
        set,
        msg: e.to_string(),
    }
}

/// Clears the ambient and inheritable sets of the calling thread: the only sets that carry a
/// capability across `execve` into a program without file capabilities. Effective and
/// permitted stay, so the caller keeps what it holds (the ring is still to be opened); a child
/// it spawns afterwards (the tcpdump that compiles `--filter`) starts with no capability even
/// when the helper got CAP_NET_RAW as an ambient capability (systemd's
/// `AmbientCapabilities=`, `setpriv --ambient-caps`).
///
/// # Errors
/// [`PrivilegeError::Caps`] when a set cannot be cleared or still holds something.
pub fn clear_inherited() -> Result<(), PrivilegeError> {
    caps::clear(None, CapSet::Ambient).map_err(caps_err("ambient"))?;
    caps::clear(None, CapSet::Inheritable).map_err(caps_err("inheritable"))?;
    ensure_empty(&[
        (CapSet::Ambient, "ambient"),
        (CapSet::Inheritable, "inheritable"),
    ])
}

/// Reads each set back and fails, naming the set and what it still holds, unless every one
/// is empty: a clear that the kernel silently ignored must not go unnoticed.
fn ensure_empty(sets: &[(CapSet, &'static str)]) -> Result<(), PrivilegeError> {
    for &(set, name) in sets {
        let held = caps::read(None, set).map_err(caps_err(name))?;
        if !held.is_empty() {
            let mut v: Vec<String> = held.iter().map(ToString::to_string).collect();
            v.sort();
            return Err(PrivilegeError::NotEmpty {
                set: name,
                caps: v.join(","),
            });
        }
    }
    Ok(())
}

/// Whether the current thread holds `cap` in its effective set.
#[must_use]
pub fn has_effective(cap: Capability) -> bool {
    caps::has_cap(None, CapSet::Effective, cap).unwrap_or(false)
}

/// Clears every capability set and, when the process is root, switches to `user`
/// (`(uid, gid)`, supplementary groups emptied). See the module doc for the order.
///
/// Must run on the only thread of the process: capability sets are per thread.
///
/// # Errors
/// [`PrivilegeError`] for the first step that fails.
pub fn drop_all(user: Option<(u32, u32)>) -> Result<DropReport, PrivilegeError> {
    let mut report = DropReport::default();
    caps::clear(None, CapSet::Ambient).map_err(caps_err("ambient"))?;
    caps::clear(None, CapSet::Inheritable).map_err(caps_err("inheritable"))?;

    if has_effective(Capability::CAP_SETPCAP) {
        caps::clear(None, CapSet::Bounding).map_err(caps_err("bounding"))?;
    } else {
        report.bounding_kept = true;
    }

    let root = nix::unistd::geteuid().is_root() || nix::unistd::getuid().is_root();
    if root {
        let (uid, gid) = user.ok_or(PrivilegeError::RootWithoutUser)?;
        if uid == 0 {
            return Err(PrivilegeError::RootWithoutUser);
        }
        switch_user(uid, gid)?;
        report.switched_to = Some((uid, gid));
    }

    caps::clear(None, CapSet::Effective).map_err(caps_err("effective"))?;
    caps::clear(None, CapSet::Permitted).map_err(caps_err("permitted"))?;

    ensure_empty(&[
        (CapSet::Effective, "effective"),
        (CapSet::Permitted, "permitted"),
        (CapSet::Inheritable, "inheritable"),
        (CapSet::Ambient, "ambient"),
    ])?;
    Ok(report)
}

fn switch_user(uid: u32, gid: u32) -> Result<(), PrivilegeError> {
    let err = |source: nix::Error| PrivilegeError::SwitchUser {
        uid,
        gid,
        source: io::Error::from(source),
    };
    let g = nix::unistd::Gid::from_raw(gid);
    let u = nix::unistd::Uid::from_raw(uid);
    // Groups first (needs CAP_SETGID, lost with the uid), then gid, then uid last.
    nix::unistd::setgroups(&[]).map_err(err)?;
    nix::unistd::setresgid(g, g, g).map_err(err)?;
    nix::unistd::setresuid(u, u, u).map_err(err)?;
    // Verify: a partial switch (e.g. saved uid still 0) would let the process climb back.
    let r = nix::unistd::getresuid().map_err(err)?;
    let gr = nix::unistd::getresgid().map_err(err)?;
    if [r.real, r.effective, r.saved] != [u, u, u] || [gr.real, gr.effective, gr.saved] != [g, g, g]
    {
        return Err(PrivilegeError::SwitchUser {
            uid,
            gid,
            source: io::Error::other("ids did not all change"),
        });
    }
    Ok(())
}

/// Sets `PR_SET_NO_NEW_PRIVS`: execve can no longer grant privileges (setuid bits and file
/// capabilities are ignored), and it is the precondition for an unprivileged seccomp filter.
///
/// # Errors
/// The prctl error.
pub fn set_no_new_privs() -> Result<(), PrivilegeError> {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) takes no pointers and only sets a flag of
    // the calling thread (inherited by threads created later).
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(PrivilegeError::NoNewPrivs(io::Error::last_os_error()));
    }
    Ok(())
}

/// Looks up a user by name or numeric id: `(uid, primary gid)`.
///
/// # Errors
/// A message when the user does not exist.
pub fn lookup_user(name: &str) -> Result<(u32, u32), String> {
    if let Ok(n) = name.parse::<u32>() {
        return match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(n)) {
            Ok(Some(u)) => Ok((u.uid.as_raw(), u.gid.as_raw())),
            _ => Ok((n, n)),
        };
    }
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok((u.uid.as_raw(), u.gid.as_raw())),
        Ok(None) => Err(format!("no such user: {name}")),
        Err(e) => Err(format!("looking up user {name}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `CapAmb`/`CapInh`/`CapEff` of a child process spawned by the calling thread.
    fn child_caps() -> (String, String, String) {
        let out = std::process::Command::new("cat")
            .arg("/proc/self/status")
            .output()
            .expect("cat");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        (field("CapAmb:"), field("CapInh:"), field("CapEff:"))
    }

    /// Needs root: an ambient CAP_NET_RAW reaches a child until `clear_inherited`, and not
    /// after it, while the thread itself keeps CAP_NET_RAW effective. Runs on its own thread
    /// (capability sets are per thread).
    #[test]
    fn a_child_inherits_no_ambient_capability_after_clear_inherited_needs_root() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root");
            return;
        }
        std::thread::spawn(|| {
            caps::raise(None, CapSet::Inheritable, Capability::CAP_NET_RAW).expect("inheritable");
            caps::raise(None, CapSet::Ambient, Capability::CAP_NET_RAW).expect("ambient");
            let (amb, inh, _) = child_caps();
            assert_eq!(
                amb, "0000000000002000",
                "the ambient capability reaches a child"
            );
            assert_eq!(inh, "0000000000002000");
            clear_inherited().expect("clear");
            let (amb, inh, _) = child_caps();
            assert_eq!(
                amb, "0000000000000000",
                "no ambient capability after clearing"
            );
            assert_eq!(inh, "0000000000000000");
            assert!(
                has_effective(Capability::CAP_NET_RAW),
                "the caller keeps its own"
            );
        })
        .join()
        .expect("test thread");
    }
}
