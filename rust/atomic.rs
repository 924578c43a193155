//! The one durable-write helper and the test-only kill points.
//!
//! Every durable write goes: temp file in the destination directory → write → fsync →
//! `kill_point` → rename over the destination → fsync(directory). A crash at any step leaves
//! either the old file or the new one, plus at worst a stray `.pvtmp-*` file.
//!
//! Temp names are short and never derived from the final name, so a 255-byte final name works.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::error::{IoContext, Result};

/// Prefix of every temp file pivot creates; cleanup code may remove stale ones by this prefix.
pub const TEMP_PREFIX: &str = ".pvtmp-";

/// If env `PIVOT_KILL_AT` equals `name`, SIGKILL this process (crash tests). The env is read once.
pub fn kill_point(name: &str) {
    static KILL_AT: OnceLock<Option<String>> = OnceLock::new();
    let at = KILL_AT.get_or_init(|| {
        std::env::var("PIVOT_KILL_AT")
            .ok()
            .filter(|s| !s.is_empty())
    });
    if at.as_deref() == Some(name) {
        // SAFETY: plain libc calls with no memory arguments.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// 32 hex digits from the kernel's random source: names and tokens other processes, on this
/// machine or another, must not reproduce (staged uploads, gc lock tokens).
pub fn random_hex() -> String {
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if usize::try_from(n).ok() != Some(b.len()) {
        // Not expected for 16 bytes on Linux; time and pid still separate concurrent writers.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let h = blake3::hash(format!("{t}-{}", std::process::id()).as_bytes());
        b.copy_from_slice(&h.as_bytes()[..16]);
    }
    b.iter().fold(String::with_capacity(32), |mut out, x| {
        let _ = write!(out, "{x:02x}");
        out
    })
}

/// A fresh, short, unlikely-to-collide temp path inside `dir` (not created).
pub fn temp_path_in(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded from the OS per process; enough to separate concurrent processes.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    let r = h.finish() & 0xffff_ffff;
    dir.join(format!("{TEMP_PREFIX}{}-{n}-{r:08x}", std::process::id()))
}

/// Create (`O_EXCL`) a new temp file in `dir` with permission bits `mode` (before umask).
pub fn create_temp_in(dir: &Path, mode: u32) -> Result<(PathBuf, File)> {
    loop {
        let p = temp_path_in(dir);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {} // taken: another name
            Err(e) => return Err(crate::error::Error::io(dir, e)),
        }
    }
}

/// The directory a path lives in (`.` for a bare relative name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsync a directory so a rename inside it is durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Durably replace `path` with `data` (see module doc). `kp` names the kill point hit after the
/// temp file is synced and before it is renamed into place.
pub fn write_atomic(path: &Path, data: &[u8], kp: Option<&str>) -> Result<()> {
    let dir = parent_dir(path);
    let (tmp, mut f) = create_temp_in(dir, 0o666)?;
    let res = (|| {
        f.write_all(data).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        drop(f);
        if let Some(k) = kp {
            kill_point(k);
        }
        std::fs::rename(&tmp, path).at(path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res?;
    fsync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        write_atomic(&p, b"one", None).unwrap();
        write_atomic(&p, b"two", Some("not_set")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file left behind");
    }

    #[test]
    fn long_final_name_works() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x".repeat(255));
        write_atomic(&p, b"data", None).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"data");
    }

    #[test]
    fn missing_dir_error_names_path() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("nope/a");
        let e = write_atomic(&p, b"x", None).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn temp_names_are_unique_and_short() {
        let a = temp_path_in(Path::new("d"));
        let b = temp_path_in(Path::new("d"));
        assert_ne!(a, b);
        assert!(a.file_name().unwrap().len() < 64);
    }
}
