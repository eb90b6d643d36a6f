//! Temporary directories removed on drop.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh temporary directory, removed (with everything in it) on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/netwatch-<tag>-<pid>-<n>` (mode from the umask).
    #[must_use]
    pub fn new(tag: &str) -> Self {
        Self::create(&std::env::temp_dir(), tag)
    }

    /// Creates `/tmp/netwatch-<tag>-<pid>-<n>` with mode 0777, for processes running as
    /// another user (e.g. `nobody`). It is under `/tmp` rather than `$TMPDIR`, which such a
    /// user may not be able to reach.
    #[must_use]
    pub fn world_writable(tag: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let d = Self::create(Path::new("/tmp"), tag);
        std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        d
    }

    fn create(parent: &Path, tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = parent.join(format!(
            "netwatch-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside.
    #[must_use]
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
