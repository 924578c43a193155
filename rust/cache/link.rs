//! The one home of linking, used by both the insert and the restore: the link modes (reflink →
//! hardlink → copy), the fallback decided once per operation, and the file primitives behind
//! them (the FICLONE clone, hard links, copy-with-hash, renames without replacing or exchanging).
//! docs/formats.md, "Cache objects and link modes".
//!
//! A `Linker` is created per operation (one insert, one restore). The first file tried decides
//! the mode: a mode that fails with a "not supported here" error (EXDEV, EOPNOTSUPP, EPERM...)
//! is dropped and the next one is tried on the same file; the mode that works is then used for
//! every other file of the operation without probing again (`Linker::run`). `Linker::link_file`
//! adds the per-file rules both directions share: executable files are copied, a hard link
//! refused with EMLINK is copied, and a failed attempt leaves nothing behind.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use crate::counters;
use crate::hash;
use crate::stat::{self, Ctime};

/// How a cache object is materialised at a path (or a path put into the cache).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkMode {
    Reflink,
    Hardlink,
    Copy,
}

impl LinkMode {
    /// Parse `"reflink" | "hardlink" | "copy"`.
    pub fn parse(s: &str) -> Option<LinkMode> {
        match s {
            "reflink" => Some(LinkMode::Reflink),
            "hardlink" => Some(LinkMode::Hardlink),
            "copy" => Some(LinkMode::Copy),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LinkMode::Reflink => "reflink",
            LinkMode::Hardlink => "hardlink",
            LinkMode::Copy => "copy",
        }
    }

    fn code(self) -> u8 {
        match self {
            LinkMode::Reflink => 1,
            LinkMode::Hardlink => 2,
            LinkMode::Copy => 3,
        }
    }

    fn from_code(c: u8) -> Option<LinkMode> {
        match c {
            1 => Some(LinkMode::Reflink),
            2 => Some(LinkMode::Hardlink),
            3 => Some(LinkMode::Copy),
            _ => None,
        }
    }

    /// Whether errno `code` means "this mode cannot work here" (fall back) rather than a real
    /// failure.
    fn unsupported(self, code: i32) -> bool {
        match self {
            // FICLONE: EOPNOTSUPP on ext4/tmpfs, EXDEV across filesystems, EINVAL on some
            // overlay/bind set-ups, ENOTTY/ENOSYS where the ioctl is unknown.
            LinkMode::Reflink => matches!(
                code,
                libc::EOPNOTSUPP
                    | libc::EXDEV
                    | libc::EINVAL
                    | libc::ENOTTY
                    | libc::ENOSYS
                    | libc::EPERM
            ),
            // link(2): EXDEV across filesystems, EPERM on filesystems without hard links (and
            // with fs.protected_hardlinks on files we do not own), EOPNOTSUPP on some FUSE.
            LinkMode::Hardlink => matches!(
                code,
                libc::EXDEV | libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS
            ),
            LinkMode::Copy => false,
        }
    }
}

/// Parse an ordered list of mode names; unknown names are an error naming the value.
pub fn parse_modes<S: AsRef<str>>(names: &[S]) -> Result<Vec<LinkMode>, String> {
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let m = LinkMode::parse(n.as_ref()).ok_or_else(|| {
            format!(
                "unknown link mode {:?} (expected reflink, hardlink or copy)",
                n.as_ref()
            )
        })?;
        if !out.contains(&m) {
            out.push(m);
        }
    }
    if out.is_empty() {
        return Err("no link mode given (expected reflink, hardlink or copy)".into());
    }
    Ok(out)
}

/// The per-operation fallback state. Cheap to share between rayon workers.
pub struct Linker {
    modes: Vec<LinkMode>,
    chosen: AtomicU8,
    deciding: Mutex<()>,
}

impl Linker {
    pub fn new(modes: Vec<LinkMode>) -> Linker {
        assert!(!modes.is_empty(), "Linker needs at least one mode");
        Linker {
            modes,
            chosen: AtomicU8::new(0),
            deciding: Mutex::new(()),
        }
    }

    /// The mode in use, once the first file has decided it.
    pub fn chosen(&self) -> Option<LinkMode> {
        LinkMode::from_code(self.chosen.load(Ordering::Acquire))
    }

    /// The mode that will be tried first (the chosen one, or the first configured one).
    pub fn first(&self) -> LinkMode {
        self.chosen().unwrap_or(self.modes[0])
    }

    /// Run `op` with the operation's mode. Before the mode is decided, modes are tried in order
    /// (one thread at a time) and `op` must leave no partial output when it fails. Errors that are
    /// not "unsupported" are returned as they are; when every mode is unsupported, the last
    /// mode's error is returned.
    pub fn run<T, E: OsErrno>(&self, mut op: impl FnMut(LinkMode) -> Result<T, E>) -> Result<T, E> {
        if let Some(m) = self.chosen() {
            return op(m);
        }
        let _guard = self
            .deciding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(m) = self.chosen() {
            return op(m);
        }
        let mut last_err = None;
        for &mode in &self.modes {
            match op(mode) {
                Ok(v) => {
                    self.chosen.store(mode.code(), Ordering::Release);
                    if mode == LinkMode::Copy {
                        if let Some(code) = last_err.as_ref().and_then(|e: &E| e.errno()) {
                            note_copy_fallback(&self.modes, code);
                        }
                    }
                    return Ok(v);
                }
                Err(e) if e.errno().is_some_and(|c| mode.unsupported(c)) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.expect("at least one mode was tried"))
    }

    /// Create the file `dst` with `make(mode)`, the operation's mode (`run`). Executable files
    /// are always copied (a cache object is never executable: sharing its inode would drop the
    /// workspace file's exec bit), and a hard link refused with EMLINK (the inode's link limit)
    /// becomes a copy of this file only. `dst` is removed after a failed attempt, so the next
    /// mode (or the caller) starts clean.
    pub fn link_file<T, E: OsErrno>(
        &self,
        exec: bool,
        dst: &Path,
        mut make: impl FnMut(LinkMode) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut attempt = |mode: LinkMode| {
            let r = match make(mode) {
                Err(e) if mode == LinkMode::Hardlink && e.errno() == Some(libc::EMLINK) => {
                    let _ = fs::remove_file(dst);
                    make(LinkMode::Copy)
                }
                r => r,
            };
            if r.is_err() {
                let _ = fs::remove_file(dst);
            }
            r
        };
        if exec {
            attempt(LinkMode::Copy)
        } else {
            self.run(attempt)
        }
    }
}

/// With env `PIVOT_VERBOSE` (`pivot -v`), say once per process that linking was impossible and
/// files are being copied (twice the disk space): e.g. a cache on another filesystem (EXDEV).
fn note_copy_fallback(modes: &[LinkMode], errno: i32) {
    static NOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let verbose = std::env::var_os("PIVOT_VERBOSE").is_some_and(|v| !v.is_empty() && v != "0");
    if !verbose || NOTED.swap(true, Ordering::Relaxed) {
        return;
    }
    let tried: Vec<&str> = modes
        .iter()
        .take_while(|m| **m != LinkMode::Copy)
        .map(|m| m.as_str())
        .collect();
    let why = io::Error::from_raw_os_error(errno).to_string();
    let why = why.split(" (os error").next().unwrap_or(&why).to_string();
    eprintln!(
        "pivot: {} not possible here ({why}); falling back to copy",
        tried.join(" and ")
    );
}

/// Errors that may carry an OS errno (to decide a link-mode fallback).
pub trait OsErrno {
    fn errno(&self) -> Option<i32>;
}

impl OsErrno for io::Error {
    fn errno(&self) -> Option<i32> {
        self.raw_os_error()
    }
}

impl OsErrno for crate::error::Error {
    fn errno(&self) -> Option<i32> {
        match self {
            crate::error::Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Create `dst` (must not exist; never follows a symlink), open for reading and writing, with
/// permissions `mode` (before the umask).
pub fn create_new(dst: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dst)
}

/// Open `src` for reading without following a final symlink.
pub fn open_read(src: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(src)
}

/// Create `dst` (`create_new`) as a clone of the open `src`: the FICLONE ioctl, shared extents
/// with copy on write. On failure `dst` may exist (empty); the caller removes it.
pub fn clone_new(src: &File, dst: &Path, mode: u32) -> io::Result<File> {
    let d = create_new(dst, mode)?;
    // SAFETY: both descriptors are open for the duration of the call; FICLONE takes an int fd.
    if unsafe { libc::ioctl(d.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(d)
}

/// Clone `src` into a new file `dst` (`clone_new`). On failure `dst` is removed.
pub fn reflink(src: &Path, dst: &Path, mode: u32) -> io::Result<()> {
    let s = open_read(src)?;
    clone_new(&s, dst, mode).map(drop).inspect_err(|_| {
        let _ = fs::remove_file(dst);
    })
}

/// Hard-link `src` at `dst` (must not exist).
pub fn hardlink(src: &Path, dst: &Path) -> io::Result<()> {
    fs::hard_link(src, dst)
}

/// Replace `path` by a hard link to `target`: link beside it under a temp name, then rename over
/// it, so `path` is never missing.
pub fn relink(target: &Path, path: &Path) -> io::Result<()> {
    let tmp = crate::atomic::temp_path_in(crate::atomic::parent_dir(path));
    fs::hard_link(target, &tmp)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Copy `src` (from its current position) to `dst`, hashing every chunk between the read and
/// the write, so the digest describes exactly the bytes written. `size_hint` (the stat size)
/// picks the chunk size: files of `hash::PARALLEL_THRESHOLD` or more are hashed with blake3's
/// multi-threaded `update_rayon` on `hash::PARALLEL_CHUNK` chunks.
pub fn copy_hash(
    src: &mut File,
    dst: &mut File,
    size_hint: u64,
) -> io::Result<(blake3::Hash, u64)> {
    let big = size_hint >= hash::PARALLEL_THRESHOLD;
    let cap = if big {
        hash::ensure_pool();
        hash::PARALLEL_CHUNK
    } else {
        // Below PARALLEL_THRESHOLD (4 MiB): the size fits usize.
        usize::try_from(size_hint + 1).map_or(256 * 1024, |n| n.clamp(4096, 256 * 1024))
    };
    let mut buf = vec![0u8; cap];
    let mut h = blake3::Hasher::new();
    let mut total = 0u64;
    loop {
        let n = hash::read_full(src, &mut buf)?;
        if n == 0 {
            break;
        }
        if big {
            h.update_rayon(&buf[..n]);
        } else {
            h.update(&buf[..n]);
        }
        dst.write_all(&buf[..n])?;
        total += n as u64;
        if n < buf.len() {
            break;
        }
    }
    Ok((h.finalize(), total))
}

/// `copy_hash` of the open `src`, whose stat `before` the caller just took, then a second stat:
/// the hash when every byte `before` describes was copied and `src` did not change meanwhile
/// (`stat::unchanged` with `ctime`), else `None`. Counts the read (`counters::count_read`).
pub fn copy_checked(
    src: &mut File,
    before: &Metadata,
    dst: &mut File,
    ctime: Ctime,
) -> io::Result<Option<blake3::Hash>> {
    let (h, n) = copy_hash(src, dst, before.len())?;
    counters::count_read(n);
    let after = src.metadata()?;
    Ok((n == before.len() && stat::unchanged(before, &after, ctime)).then_some(h))
}

fn cpath(p: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: two valid NUL-terminated paths relative to the cwd.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Rename `from` to `to` unless `to` exists (EEXIST). Filesystems without `RENAME_NOREPLACE`
/// get a check-then-rename (racy only against another writer of the same content).
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match renameat2(from, to, libc::RENAME_NOREPLACE) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from_raw_os_error(libc::EEXIST));
            }
            fs::rename(from, to)
        }
        r => r,
    }
}

/// Atomically exchange two paths (files or directories). EINVAL where unsupported.
pub fn rename_exchange(a: &Path, b: &Path) -> io::Result<()> {
    renameat2(a, b, libc::RENAME_EXCHANGE)
}

/// Permissions of a restored (writable) copy: 0o644, or 0o755 when executable.
pub fn workspace_mode(exec: bool) -> u32 {
    if exec {
        0o755
    } else {
        0o644
    }
}

/// Permissions of a cache object: read-only, never executable (exec lives in the manifest).
pub const OBJECT_MODE: u32 = 0o444;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn parse_names() {
        assert_eq!(LinkMode::parse("reflink"), Some(LinkMode::Reflink));
        assert_eq!(LinkMode::parse("hardlink"), Some(LinkMode::Hardlink));
        assert_eq!(LinkMode::parse("copy"), Some(LinkMode::Copy));
        assert_eq!(LinkMode::parse("symlink"), None);
        assert_eq!(
            parse_modes(&["copy", "hardlink", "copy"]).unwrap(),
            vec![LinkMode::Copy, LinkMode::Hardlink]
        );
        assert!(parse_modes(&["nope"]).unwrap_err().contains("nope"));
        assert!(parse_modes::<&str>(&[]).is_err());
        for m in [LinkMode::Reflink, LinkMode::Hardlink, LinkMode::Copy] {
            assert_eq!(LinkMode::parse(m.as_str()), Some(m));
        }
    }

    #[test]
    fn copy_hash_small_and_big() {
        let d = tempfile::tempdir().unwrap();
        for n in [0usize, 11, 300_000, hash::PARALLEL_CHUNK + 5] {
            let data: Vec<u8> = (0..n).map(|i| u8::try_from(i % 251).unwrap()).collect();
            let src = d.path().join(format!("s{n}"));
            fs::write(&src, &data).unwrap();
            let dst = d.path().join(format!("d{n}"));
            let mut from = open_read(&src).unwrap();
            let mut to = create_new(&dst, 0o644).unwrap();
            let (digest, len) = copy_hash(&mut from, &mut to, n as u64).unwrap();
            assert_eq!(len, n as u64);
            assert_eq!(digest, blake3::hash(&data));
            assert_eq!(fs::read(&dst).unwrap(), data);
        }
    }

    #[test]
    fn rename_flags() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, b"A").unwrap();
        fs::create_dir(&b).unwrap();
        let err = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
        rename_exchange(&a, &b).unwrap();
        assert!(a.is_dir());
        assert_eq!(fs::read(&b).unwrap(), b"A");
        let c = dir.path().join("c");
        rename_noreplace(&b, &c).unwrap();
        assert_eq!(fs::read(&c).unwrap(), b"A");
    }

    #[test]
    fn create_new_refuses_symlink() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_new(&link, 0o644).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn hardlink_shares_inode() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("a");
        fs::write(&src, b"x").unwrap();
        let dst = d.path().join("b");
        hardlink(&src, &dst).unwrap();
        assert_eq!(
            fs::metadata(&src).unwrap().ino(),
            fs::metadata(&dst).unwrap().ino()
        );
    }

    #[test]
    fn reflink_works_or_reports_unsupported() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("a");
        fs::write(&src, b"data").unwrap();
        let dst = d.path().join("b");
        match reflink(&src, &dst, 0o444) {
            Ok(()) => assert_eq!(fs::read(&dst).unwrap(), b"data"),
            Err(e) => {
                assert!(
                    LinkMode::Reflink.unsupported(e.raw_os_error().unwrap()),
                    "{e}"
                );
                assert!(!dst.exists(), "failed reflink must not leave dst");
            }
        }
    }

    #[test]
    fn linker_falls_back_once() {
        let linker = Linker::new(vec![LinkMode::Reflink, LinkMode::Hardlink, LinkMode::Copy]);
        let mut tries = Vec::new();
        let r = linker.run(|m| -> io::Result<i32> {
            tries.push(m);
            if m == LinkMode::Hardlink {
                Ok(7)
            } else {
                Err(io::Error::from_raw_os_error(libc::EXDEV))
            }
        });
        assert_eq!(r.unwrap(), 7);
        assert_eq!(tries, vec![LinkMode::Reflink, LinkMode::Hardlink]);
        assert_eq!(linker.chosen(), Some(LinkMode::Hardlink));
        // decided: no more probing, errors are returned as they are
        let mut tries2 = Vec::new();
        let r2: io::Result<()> = linker.run(|m| {
            tries2.push(m);
            Err(io::Error::from_raw_os_error(libc::EXDEV))
        });
        assert!(r2.is_err());
        assert_eq!(tries2, vec![LinkMode::Hardlink]);
    }

    #[test]
    fn link_file_copies_exec_files_and_emlink_and_cleans_failures() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("f");
        let linker = Linker::new(vec![LinkMode::Hardlink, LinkMode::Copy]);
        // An executable file is copied and decides nothing.
        let mut tried = Vec::new();
        let r: io::Result<()> = linker.link_file(true, &dst, |m| {
            tried.push(m);
            Ok(())
        });
        r.unwrap();
        assert_eq!(tried, vec![LinkMode::Copy]);
        assert_eq!(linker.chosen(), None);
        // EMLINK: this file is copied (after cleaning up), hardlink stays the operation's mode.
        let mut tried = Vec::new();
        let r: io::Result<()> = linker.link_file(false, &dst, |m| {
            tried.push(m);
            if m == LinkMode::Hardlink {
                fs::write(&dst, b"partial").unwrap();
                return Err(io::Error::from_raw_os_error(libc::EMLINK));
            }
            assert!(!dst.exists(), "the failed attempt was removed first");
            Ok(())
        });
        r.unwrap();
        assert_eq!(tried, vec![LinkMode::Hardlink, LinkMode::Copy]);
        assert_eq!(linker.chosen(), Some(LinkMode::Hardlink));
        // Any other failure leaves nothing at `dst`.
        let r: io::Result<()> = linker.link_file(false, &dst, |_| {
            fs::write(&dst, b"partial").unwrap();
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        });
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        assert!(!dst.exists());
    }

    #[test]
    fn linker_real_error_is_not_fallback() {
        let linker = Linker::new(vec![LinkMode::Hardlink, LinkMode::Copy]);
        let r: io::Result<()> = linker.run(|_| Err(io::Error::from_raw_os_error(libc::ENOSPC)));
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(linker.chosen(), None);
    }
}
