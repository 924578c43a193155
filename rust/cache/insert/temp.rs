//! The temp object of an insert through `files/`: made from the source with the operation's
//! link mode (`Linker::link_file`) and hashed in the same pass, with the source's stat checked
//! around the read.

use std::fs::{self, File, Metadata};
use std::io::{self, Seek};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{changed, Inserter};
use crate::atomic;
use crate::cache::link::{self, LinkMode, OsErrno, OBJECT_MODE};
use crate::counters;
use crate::error::{Error, Result};
use crate::hash;
use crate::stat::{self, Ctime};

/// A temp object built from a source file.
pub(super) struct Temp {
    pub(super) path: PathBuf,
    pub(super) hash: blake3::Hash,
    pub(super) size: u64,
    /// How it was made: Hardlink means the temp IS the source inode.
    pub(super) mode: LinkMode,
    /// The source's stat the hash describes.
    pub(super) before: Metadata,
}

/// Removes the temp object on drop unless disarmed.
pub(super) struct TempGuard(pub(super) Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

impl Inserter<'_> {
    /// Build the temp object from `src` with the operation's link mode (exec files and files
    /// with too many links are copied: an object is never executable).
    pub(super) fn make_temp(&self, src: &Path, seen: &Metadata, exec: bool) -> Result<Temp> {
        let tmp = atomic::temp_path_in(&self.cache.files);
        let r = self.linker.link_file(exec, &tmp, |mode| match mode {
            LinkMode::Reflink => temp_reflink(src, seen, &tmp),
            LinkMode::Hardlink => temp_hardlink(src, seen, &tmp),
            LinkMode::Copy => temp_copy(src, seen, &tmp),
        });
        r.map_err(|e| match e {
            // EACCES/EROFS while making the temp is about the cache directory, not the source
            // (which we could read): name the directory the user has to fix.
            TempErr::Io(io) if !dir_writable(&self.cache.files) && denied(&io) => {
                Error::io(&self.cache.files, io)
            }
            e => e.into_error(src),
        })
    }
}

fn temp_copy(src: &Path, seen: &Metadata, tmp: &Path) -> std::result::Result<Temp, TempErr> {
    let mut s = link::open_read(src)?;
    let before = s.metadata()?;
    if !stat::unchanged(seen, &before, Ctime::Compare) {
        return Err(TempErr::Changed);
    }
    test_pause();
    let mut d = link::create_new(tmp, OBJECT_MODE)?;
    let h = link::copy_checked(&mut s, &before, &mut d, Ctime::Compare)?.ok_or(TempErr::Changed)?;
    Ok(Temp {
        path: tmp.into(),
        hash: h,
        size: before.len(),
        mode: LinkMode::Copy,
        before,
    })
}

fn temp_reflink(src: &Path, seen: &Metadata, tmp: &Path) -> std::result::Result<Temp, TempErr> {
    let s = link::open_read(src)?;
    let before = s.metadata()?;
    if !stat::unchanged(seen, &before, Ctime::Compare) {
        return Err(TempErr::Changed);
    }
    test_pause();
    let mut d = link::clone_new(&s, tmp, OBJECT_MODE)?;
    let size = d.metadata()?.len();
    d.rewind()?;
    let h = hash::hash_open_file(&mut d, size)?;
    counters::count_read(size);
    let after = s.metadata()?;
    if !stat::unchanged(&before, &after, Ctime::Compare) || size != before.len() {
        return Err(TempErr::Changed);
    }
    Ok(Temp {
        path: tmp.into(),
        hash: h,
        size,
        mode: LinkMode::Reflink,
        before,
    })
}

fn temp_hardlink(src: &Path, seen: &Metadata, tmp: &Path) -> std::result::Result<Temp, TempErr> {
    link::hardlink(src, tmp)?;
    // From here the temp is the source inode.
    let mut f = File::open(tmp)?;
    let (h, after) = hash_unchanged(&mut f, seen)?;
    if after.permissions().mode() & 0o7777 != OBJECT_MODE {
        // The workspace file is the object: it becomes read-only too (expected).
        f.set_permissions(fs::Permissions::from_mode(OBJECT_MODE))?;
    }
    Ok(Temp {
        path: tmp.into(),
        hash: h,
        size: after.len(),
        mode: LinkMode::Hardlink,
        before: after,
    })
}

/// Hash the open file the walk saw as `seen`. `Changed` if it is another file or changed while
/// being read. ctime is compared only around the read: a link (ours, or another thread's for a
/// second hard link of the same inode) may have moved it since the walk. Returns the hash and
/// the stat after the read (equal to the one before, ctime included).
pub(super) fn hash_unchanged(
    f: &mut File,
    seen: &Metadata,
) -> std::result::Result<(blake3::Hash, Metadata), TempErr> {
    let before = f.metadata()?;
    if !stat::unchanged(seen, &before, Ctime::Ignore) {
        return Err(TempErr::Changed);
    }
    test_pause();
    let r = hash::hash_checked(f, &before, Ctime::Compare)?;
    counters::count_read(before.len());
    r.ok_or(TempErr::Changed)
}

/// Test hook: with env `PIVOT_TEST_INSERT_SLEEP_MS=<n>`, sleep after the "before" stat of every
/// file insert, so a test can modify the source inside the window deterministically.
fn test_pause() {
    static MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let ms = *MS.get_or_init(|| {
        std::env::var("PIVOT_TEST_INSERT_SLEEP_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    });
    if ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Errors while building a temp: io (may trigger a link-mode fallback) or "source changed".
pub(super) enum TempErr {
    Io(io::Error),
    Changed,
}

impl From<io::Error> for TempErr {
    fn from(e: io::Error) -> Self {
        if hash::is_truncated(&e) {
            return TempErr::Changed; // truncated under the hash's mmap
        }
        TempErr::Io(e)
    }
}

impl OsErrno for TempErr {
    fn errno(&self) -> Option<i32> {
        match self {
            TempErr::Io(e) => e.raw_os_error(),
            TempErr::Changed => None,
        }
    }
}

impl TempErr {
    pub(super) fn into_error(self, src: &Path) -> Error {
        match self {
            TempErr::Io(e) => Error::io(src, e),
            TempErr::Changed => changed(src),
        }
    }
}

fn denied(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS)
    )
}

/// Whether this process may create entries in `dir` (effective ids, like open(2) would).
fn dir_writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK, libc::AT_EACCESS) == 0 }
}
