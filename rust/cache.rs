//! The content-addressed cache: `<cache_dir>/files/<2 hex>/<62 hex>`, read-only objects.
//!
//! Insert (file): the source is linked / cloned / copied into a temp object in `files/` and the
//! bytes are hashed in that same pass (hardlink and reflink: the temp is read once; copy: hashed
//! between read and write). The source's stat before and after must agree, else
//! `SourceChanged` and the temp is removed. The temp is then renamed into place with
//! RENAME_NOREPLACE: an existing object is never rewritten (unless its size is wrong, i.e. it
//! was truncated by a crash, then it is replaced). Kill points: `object_write` (temp complete),
//! `object_rename` (just before the rename), `manifest_write` (directory object).
//!
//! Durability: file objects are not fsynced one by one (100,000 fsyncs would dominate a tree
//! insert); one `syncfs` on the cache filesystem runs before a directory's manifest object is
//! written and before `insert` returns, so a lock written after `insert` never names an object
//! that is not on disk. A single-file insert fsyncs its object and the shard directory instead.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rayon::prelude::*;

use crate::atomic::{self, kill_point};
use crate::error::{Error, IoContext, Result};
use crate::hash;
use crate::index::{Index, PathInfo};
use crate::link::{self, LinkMode, Linker, OBJECT_MODE};
use crate::manifest::{self, Entry, Kind, Manifest};

/// A cache directory (`.pivot/cache`).
pub struct Cache {
    pub dir: PathBuf,
    pub files: PathBuf,
    shards: Vec<AtomicBool>,
}

impl Cache {
    pub fn new(cache_dir: &Path) -> Cache {
        Cache {
            dir: cache_dir.to_path_buf(),
            files: cache_dir.join("files"),
            shards: (0..256).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// The object path of `hash` (validated: 64 lowercase hex).
    pub fn object_path(&self, hash: &str) -> Result<PathBuf> {
        if !hash::is_hex64(hash) {
            return Err(Error::Invalid {
                path: self.dir.clone(),
                msg: format!("{hash:?} is not a 64-hex blake3 hash"),
            });
        }
        Ok(manifest::object_path(&self.dir, hash))
    }

    /// Create `files/<2 hex>/` once per operation.
    fn ensure_shard(&self, hash: &str) -> Result<()> {
        let i = usize::from_str_radix(&hash[..2], 16).unwrap_or(0);
        if self.shards[i].load(Ordering::Relaxed) {
            return Ok(());
        }
        let d = self.files.join(&hash[..2]);
        match fs::create_dir(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&d).at(&d)?;
            }
            Err(e) => return Err(Error::io(d, e)),
        }
        self.shards[i].store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Make sure `files/` exists and remove temps left by dead processes.
    pub fn prepare(&self) -> Result<()> {
        fs::create_dir_all(&self.files).at(&self.files)?;
        clean_stale(&self.files);
        Ok(())
    }

    /// Read and validate a directory's manifest object (CacheMissing / CacheCorrupt).
    pub fn read_manifest(&self, dir_hash: &str) -> Result<Manifest> {
        manifest::load_from_cache(&self.dir, dir_hash)
    }

    /// Object present (a directory: its manifest and every file object).
    pub fn contains(&self, hash: &str, is_dir: bool) -> Result<bool> {
        let p = self.object_path(hash)?;
        if !is_dir {
            return Ok(fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()));
        }
        let m = match self.read_manifest(hash) {
            Ok(m) => m,
            // A manifest that is absent, corrupt, malformed or names unsafe paths cannot be
            // restored: not "present" (`checkout` still reports why when it tries).
            Err(Error::CacheMissing { .. })
            | Err(Error::CacheCorrupt { .. })
            | Err(Error::Manifest { .. })
            | Err(Error::UnsafePath { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        hash::ensure_pool();
        Ok(m.entries.par_iter().filter(|e| e.link.is_none()).all(|e| {
            self.object_path(&e.hash)
                .ok()
                .and_then(|p| fs::symlink_metadata(p).ok())
                .is_some_and(|md| md.is_file() && md.len() == e.size)
        }))
    }
}

/// Remove `.pvtmp-<pid>-*` / `.pvold-<pid>-*` entries of `dir` whose process is gone. Best
/// effort: errors are ignored (another process may be cleaning the same directory).
pub fn clean_stale(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let me = std::process::id();
    for ent in rd.flatten() {
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name
            .strip_prefix(atomic::TEMP_PREFIX)
            .or_else(|| name.strip_prefix(OLD_PREFIX))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || process_alive(pid) {
            continue;
        }
        let p = ent.path();
        let _ = match ent.file_type() {
            Ok(t) if t.is_dir() => remove_tree(&p),
            _ => fs::remove_file(&p),
        };
    }
}

/// Prefix of a tree moved out of the way during a restore swap.
pub const OLD_PREFIX: &str = ".pvold-";

fn process_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence/permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Remove a tree we created, making read-only directories writable first if needed.
pub fn remove_tree(p: &Path) -> io::Result<()> {
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            for ent in fs::read_dir(p)?.flatten() {
                if ent.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = fs::set_permissions(ent.path(), fs::Permissions::from_mode(0o755));
                }
            }
            fs::remove_dir_all(p)
        }
        r => r,
    }
}

fn same_stat(a: &Metadata, b: &Metadata, with_ctime: bool) -> bool {
    a.dev() == b.dev()
        && a.ino() == b.ino()
        && a.len() == b.len()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
        && (!with_ctime || (a.ctime() == b.ctime() && a.ctime_nsec() == b.ctime_nsec()))
}

fn changed(path: &Path) -> Error {
    Error::SourceChanged {
        path: path.into(),
        msg: "size, mtime, ctime or inode changed while it was being cached".into(),
    }
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

/// Whether an existing object's bytes still hash to its name (one read of the object).
fn object_intact(obj: &Path, h: &str) -> bool {
    let Ok(mut f) = File::open(obj) else {
        return false;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    hash::hash_open_file(&mut f, len).is_ok_and(|got| got.to_hex().as_str() == h)
}

/// Files and bytes inserted by this process so far (`insert_progress`): progress for a long
/// insert, polled from another thread. Relaxed: counters only, no ordering with anything else.
static INSERTED_FILES: AtomicU64 = AtomicU64::new(0);
static INSERTED_BYTES: AtomicU64 = AtomicU64::new(0);

fn count_inserted(size: u64) {
    INSERTED_FILES.fetch_add(1, Ordering::Relaxed);
    INSERTED_BYTES.fetch_add(size, Ordering::Relaxed);
}

/// (files, bytes) handled by `insert` in this process so far, including files already cached.
pub fn insert_progress() -> (u64, u64) {
    (
        INSERTED_FILES.load(Ordering::Relaxed),
        INSERTED_BYTES.load(Ordering::Relaxed),
    )
}

/// One insert operation: the cache, the link-mode decision and the stat index.
pub struct Inserter<'a> {
    pub cache: &'a Cache,
    pub linker: &'a Linker,
    pub idx: Option<&'a Index>,
}

/// A temp object built from a source file.
struct Temp {
    path: PathBuf,
    hash: blake3::Hash,
    size: u64,
    /// How it was made: Hardlink means the temp IS the source inode.
    mode: LinkMode,
    /// The source's stat the hash describes.
    before: Metadata,
}

/// Removes the temp object on drop unless disarmed.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

impl Inserter<'_> {
    /// Insert one regular file whose lstat (from the walk) is `seen`; returns its manifest entry
    /// fields (hash, size, exec).
    pub fn insert_file(&self, src: &Path, seen: &Metadata) -> Result<(String, u64, bool)> {
        let exec = manifest::is_exec(seen);
        let known = self.idx.and_then(|i| i.lookup(seen));
        if let Some(h) = &known {
            if !exec && self.linker.chosen().is_none() {
                self.decide_mode(src);
            }
            if self.already_cached(src, seen, h, exec)? {
                count_inserted(seen.len());
                return Ok((h.clone(), seen.len(), exec));
            }
        }
        if !exec && self.linker.chosen() == Some(LinkMode::Hardlink) {
            if let Some((h, size)) = self.insert_hardlinked(src, seen, known.as_deref())? {
                count_inserted(size);
                return Ok((h, size, false));
            }
        }
        let recorded = crate::index::stamp(self.idx);
        let t = self.make_temp(src, seen, exec)?;
        let mut guard = TempGuard(Some(t.path.clone()));
        let h = hash::hex(&t.hash);
        kill_point("object_write");
        let obj = self.cache.object_path(&h)?;
        self.cache.ensure_shard(&h)?;
        kill_point("object_rename");
        let placed = match link::rename_noreplace(&t.path, &obj) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let ok = fs::symlink_metadata(&obj).is_ok_and(|m| m.is_file() && m.len() == t.size)
                    && object_intact(&obj, &h);
                if !ok {
                    // A truncated object (crash before syncfs) or one whose bytes were changed
                    // (a hard-linked output edited in place): replace it, it names other bytes.
                    fs::rename(&t.path, &obj).at(&obj)?;
                }
                !ok
            }
            Err(e) => return Err(Error::io(obj, e)),
        };
        if placed {
            guard.0 = None;
        }
        let ws_meta = if t.mode == LinkMode::Hardlink {
            let om = fs::symlink_metadata(&obj).at(&obj)?;
            if placed || (om.dev() == t.before.dev() && om.ino() == t.before.ino()) {
                // The workspace path and the object are one inode; its ctime moved (link, chmod,
                // rename), so record the stat it has now, after the final chmod: one entry
                // serves both `hash_path` and restores (`Index::lookup_object`).
                om
            } else {
                self.relink_workspace(src, &obj)?
            }
        } else {
            t.before.clone()
        };
        drop(guard);
        if let Some(i) = self.idx {
            i.record(&ws_meta, recorded, &t.hash);
        }
        count_inserted(t.size);
        Ok((h, t.size, exec))
    }

    /// Hardlink mode, once decided: hash `src` in place (or take the index's word for it) and
    /// link it straight to its object name. No temp in `files/` and no cross-directory rename
    /// per file: with two threads those serialised on the cache directory's lock and the
    /// filesystem's rename lock, and made a 100,000-file insert twice as slow as `cp -al`.
    /// `None`: this path does not apply (link refused, or a damaged object to replace); the
    /// caller inserts through a temp, which also owns the link-mode fallback.
    fn insert_hardlinked(
        &self,
        src: &Path,
        seen: &Metadata,
        known: Option<&str>,
    ) -> Result<Option<(String, u64)>> {
        let recorded = crate::index::stamp(self.idx);
        let (hash, before) = match known {
            Some(h) => (
                blake3::Hash::from_hex(h).map_err(|_| changed(src))?,
                seen.clone(),
            ),
            None => {
                let mut f = File::open(src).at(src)?;
                hash_unchanged(&mut f, seen).map_err(|e| e.into_error(src))?
            }
        };
        let hex = hash::hex(&hash);
        let obj = self.cache.object_path(&hex)?;
        self.cache.ensure_shard(&hex)?;
        kill_point("object_rename");
        let ws_meta = match fs::hard_link(src, &obj) {
            Ok(()) => {
                let om = fs::symlink_metadata(&obj).at(&obj)?;
                // link() moves only the ctime; anything else means `src` was replaced or
                // written after it was hashed: give the name back.
                if !same_stat(&before, &om, false) {
                    let _ = fs::remove_file(&obj);
                    return Err(changed(src));
                }
                if om.permissions().mode() & 0o7777 != OBJECT_MODE {
                    // The workspace file is the object: it becomes read-only too (expected).
                    fs::set_permissions(&obj, fs::Permissions::from_mode(OBJECT_MODE)).at(&obj)?;
                    fs::symlink_metadata(&obj).at(&obj)?
                } else {
                    om
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let om = fs::symlink_metadata(&obj).at(&obj)?;
                if om.dev() == before.dev() && om.ino() == before.ino() {
                    om
                } else if om.is_file()
                    && om.len() == before.len()
                    && (self.idx.and_then(|i| i.lookup_object(&om)).as_deref() == Some(&hex)
                        || object_intact(&obj, &hex))
                {
                    self.relink_workspace(src, &obj)?
                } else {
                    return Ok(None); // a damaged object: the temp path replaces it
                }
            }
            Err(_) => return Ok(None),
        };
        if let Some(i) = self.idx {
            i.record(&ws_meta, recorded, &hash);
        }
        Ok(Some((hex, before.len())))
    }

    /// Decide the operation's link mode on a throw-away link of `src`, whose hash the stat index
    /// already knows: otherwise the first file of an operation decides by building a temp
    /// object, which hashes it, and a commit of one big file read it all again. An error that
    /// is not "unsupported here" decides nothing: the normal path meets it again and reports it.
    fn decide_mode(&self, src: &Path) {
        let tmp = atomic::temp_path_in(&self.cache.files);
        let _ = self.linker.run(|mode| -> io::Result<()> {
            if self.linker.chosen().is_some() {
                return Ok(()); // another thread decided while this one waited
            }
            match mode {
                LinkMode::Hardlink => link::hardlink(src, &tmp)?,
                LinkMode::Reflink => link::reflink(src, &tmp, OBJECT_MODE)?,
                LinkMode::Copy => return Ok(()),
            }
            fs::remove_file(&tmp)
        });
    }

    /// The index knows `src`'s hash: if the object exists with the right size, make sure the
    /// workspace is linked to it (hardlink mode) and report true. False: insert normally.
    fn already_cached(&self, src: &Path, seen: &Metadata, h: &str, exec: bool) -> Result<bool> {
        let obj = self.cache.object_path(h)?;
        let Ok(om) = fs::symlink_metadata(&obj) else {
            return Ok(false);
        };
        if !om.is_file() || om.len() != seen.len() {
            return Ok(false);
        }
        let same_inode = om.dev() == seen.dev() && om.ino() == seen.ino();
        if same_inode || exec || self.linker.first() != LinkMode::Hardlink {
            return Ok(true);
        }
        let vouched = self.idx.and_then(|i| i.lookup_object(&om)).as_deref() == Some(h);
        if !vouched && !object_intact(&obj, h) {
            // Never point the workspace at a corrupt object: insert normally (replaces it).
            return Ok(false);
        }
        // Workspace holds a separate copy: point it at the object (hardlink mode only; a
        // filesystem that cannot hard-link falls back for the whole operation as usual).
        let recorded = crate::index::stamp(self.idx);
        let m = self.linker.run(|mode| match mode {
            LinkMode::Hardlink => self.relink_workspace(src, &obj),
            _ => Ok(seen.clone()),
        })?;
        if let Some(i) = self.idx {
            let hh = blake3::Hash::from_hex(h).expect("validated hex");
            i.record(&m, recorded, &hh);
        }
        Ok(true)
    }

    /// Replace the workspace file `src` by a hard link to `obj` (build beside, rename over).
    fn relink_workspace(&self, src: &Path, obj: &Path) -> Result<Metadata> {
        let tmp = atomic::temp_path_in(atomic::parent_dir(src));
        fs::hard_link(obj, &tmp).at(src)?;
        if let Err(e) = fs::rename(&tmp, src) {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(src, e));
        }
        fs::symlink_metadata(src).at(src)
    }

    /// Build the temp object from `src` with the operation's link mode (exec files and files
    /// with too many links are copied: an object is never executable).
    fn make_temp(&self, src: &Path, seen: &Metadata, exec: bool) -> Result<Temp> {
        let tmp = atomic::temp_path_in(&self.cache.files);
        let attempt = |mode: LinkMode| {
            let r = match mode {
                LinkMode::Reflink => self.temp_reflink(src, seen, &tmp),
                LinkMode::Hardlink => match self.temp_hardlink(src, seen, &tmp) {
                    Err(TempErr::Io(e)) if e.raw_os_error() == Some(libc::EMLINK) => {
                        let _ = fs::remove_file(&tmp);
                        self.temp_copy(src, seen, &tmp)
                    }
                    r => r,
                },
                LinkMode::Copy => self.temp_copy(src, seen, &tmp),
            };
            if r.is_err() {
                // Leave nothing behind: the next mode (or the caller) starts clean.
                let _ = fs::remove_file(&tmp);
            }
            r
        };
        let r = if exec {
            attempt(LinkMode::Copy)
        } else {
            self.linker.run(attempt)
        };
        r.map_err(|e| match e {
            // EACCES/EROFS while making the temp is about the cache directory, not the source
            // (which we could read): name the directory the user has to fix.
            TempErr::Io(io) if !dir_writable(&self.cache.files) && denied(&io) => {
                Error::io(&self.cache.files, io)
            }
            e => e.into_error(src),
        })
    }

    fn temp_copy(
        &self,
        src: &Path,
        seen: &Metadata,
        tmp: &Path,
    ) -> std::result::Result<Temp, TempErr> {
        let mut s = link::open_read(src)?;
        let before = s.metadata()?;
        if !same_stat(seen, &before, true) {
            return Err(TempErr::Changed);
        }
        test_pause();
        let mut d = open_new_rw(tmp)?;
        let (h, n) = link::copy_hash(&mut s, &mut d, before.len())?;
        crate::index::count_read(n);
        let after = s.metadata()?;
        if !same_stat(&before, &after, true) || n != before.len() {
            return Err(TempErr::Changed);
        }
        Ok(Temp {
            path: tmp.into(),
            hash: h,
            size: n,
            mode: LinkMode::Copy,
            before,
        })
    }

    fn temp_reflink(
        &self,
        src: &Path,
        seen: &Metadata,
        tmp: &Path,
    ) -> std::result::Result<Temp, TempErr> {
        let s = link::open_read(src)?;
        let before = s.metadata()?;
        if !same_stat(seen, &before, true) {
            return Err(TempErr::Changed);
        }
        test_pause();
        let mut d = open_new_rw(tmp)?;
        // SAFETY: both descriptors are open for the duration of the call.
        let rc = unsafe { libc::ioctl(d.as_raw_fd(), libc::FICLONE, s.as_raw_fd()) };
        if rc != 0 {
            return Err(TempErr::Io(io::Error::last_os_error()));
        }
        let size = d.metadata()?.len();
        d.rewind()?;
        let h = hash::hash_open_file(&mut d, size)?;
        crate::index::count_read(size);
        let after = s.metadata()?;
        if !same_stat(&before, &after, true) || size != before.len() {
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

    fn temp_hardlink(
        &self,
        src: &Path,
        seen: &Metadata,
        tmp: &Path,
    ) -> std::result::Result<Temp, TempErr> {
        fs::hard_link(src, tmp)?;
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
}

/// Hash the open file the walk saw as `seen`. `Changed` if it is another file or changed while
/// being read. ctime is compared only around the read: a link (ours, or another thread's for a
/// second hard link of the same inode) may have moved it since the walk. Returns the hash and
/// the stat after the read (equal to the one before, ctime included).
fn hash_unchanged(
    f: &mut File,
    seen: &Metadata,
) -> std::result::Result<(blake3::Hash, Metadata), TempErr> {
    let before = f.metadata()?;
    if !same_stat(seen, &before, false) {
        return Err(TempErr::Changed);
    }
    test_pause();
    let h = hash::hash_open_file(f, before.len())?;
    crate::index::count_read(before.len());
    let after = f.metadata()?;
    if !same_stat(&before, &after, true) {
        return Err(TempErr::Changed);
    }
    Ok((h, after))
}

/// Errors while building a temp: io (may trigger a link-mode fallback) or "source changed".
enum TempErr {
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

impl link::OsErrno for TempErr {
    fn errno(&self) -> Option<i32> {
        match self {
            TempErr::Io(e) => e.raw_os_error(),
            TempErr::Changed => None,
        }
    }
}

impl TempErr {
    fn into_error(self, src: &Path) -> Error {
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

/// A new read-write file with object permissions (never follows a symlink).
fn open_new_rw(p: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(OBJECT_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
}

/// Flush the cache's filesystem once (see module doc).
pub fn sync_cache_fs(cache: &Cache) -> Result<()> {
    let f = File::open(&cache.files).at(&cache.files)?;
    // SAFETY: valid open fd.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(Error::io(&cache.files, io::Error::last_os_error()));
    }
    Ok(())
}

/// Durably store `data` as object `h` unless present (temp in `files/`, fsync, kill point `kp`,
/// rename without replacing, fsync the shard directory).
pub fn write_object(cache: &Cache, h: &str, data: &[u8], kp: &str) -> Result<()> {
    let obj = cache.object_path(h)?;
    if fs::symlink_metadata(&obj).is_ok_and(|m| m.len() == data.len() as u64) {
        return Ok(());
    }
    cache.ensure_shard(h)?;
    let tmp = atomic::temp_path_in(&cache.files);
    let _guard = TempGuard(Some(tmp.clone()));
    let mut f = open_new_rw(&tmp).at(&tmp)?;
    f.write_all(data).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    drop(f);
    kill_point(kp);
    match link::rename_noreplace(&tmp, &obj) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Present but wrong size (truncated by a crash): replace it.
            fs::rename(&tmp, &obj).at(&obj)?;
        }
        Err(e) => return Err(Error::io(obj, e)),
    }
    atomic::fsync_dir(atomic::parent_dir(&obj))
}

/// Insert a file or directory; the workspace is left linked per the chosen mode.
pub fn insert(
    path: &Path,
    cache_dir: &Path,
    state_dir: Option<&Path>,
    modes: Vec<LinkMode>,
) -> Result<PathInfo> {
    hash::ensure_pool();
    let cache = Cache::new(cache_dir);
    cache.prepare()?;
    let linker = Linker::new(modes);
    let idx = state_dir.map(Index::load);
    let ins = Inserter {
        cache: &cache,
        linker: &linker,
        idx: idx.as_ref(),
    };
    let mut lm = fs::symlink_metadata(path).at(path)?;
    let mut path = path.to_path_buf();
    if lm.file_type().is_symlink() {
        path = fs::canonicalize(&path).at(&path)?;
        lm = fs::symlink_metadata(&path).at(&path)?;
    }
    let info = if lm.is_dir() {
        insert_dir(&ins, &path)?
    } else if lm.is_file() {
        let (h, size, _) = ins.insert_file(&path, &lm)?;
        let obj = cache.object_path(&h)?;
        File::open(&obj).and_then(|f| f.sync_all()).at(&obj)?;
        atomic::fsync_dir(atomic::parent_dir(&obj))?;
        PathInfo {
            hash: h,
            size,
            nfiles: 1,
            is_dir: false,
        }
    } else {
        return Err(Error::manifest(&path, "not a regular file or directory"));
    };
    if let Some(i) = &idx {
        // The index is an optimisation; the insert itself succeeded.
        crate::index::save_quietly(i);
    }
    Ok(info)
}

fn insert_dir(ins: &Inserter<'_>, root: &Path) -> Result<PathInfo> {
    let walked = manifest::walk(root)?;
    let entries: Vec<Entry> = walked
        .into_par_iter()
        .map(|w| match w.kind {
            Kind::Link(t) => Ok(Entry::for_link(w.rel, t)),
            Kind::File => {
                let (h, size, exec) = ins.insert_file(&w.abs, &w.meta)?;
                Ok(Entry {
                    path: w.rel,
                    hash: h,
                    size,
                    exec,
                    link: None,
                })
            }
        })
        .collect::<Result<_>>()?;
    let m = Manifest::from_entries(entries);
    let bytes = m.to_bytes();
    let h = hash::hash_bytes(&bytes);
    // Every file object is on disk before the manifest that names them.
    sync_cache_fs(ins.cache)?;
    write_object(ins.cache, &h, &bytes, "manifest_write")?;
    Ok(PathInfo {
        hash: h,
        size: m.total_size(),
        nfiles: m.nfiles(),
        is_dir: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modes(m: &[&str]) -> Vec<LinkMode> {
        link::parse_modes(m).unwrap()
    }

    fn all_objects_valid(cache: &Path) -> usize {
        let mut n = 0;
        for shard in fs::read_dir(cache.join("files")).unwrap().flatten() {
            if !shard.file_type().unwrap().is_dir() {
                panic!("stray file in files/: {:?}", shard.path());
            }
            for o in fs::read_dir(shard.path()).unwrap().flatten() {
                let name = format!(
                    "{}{}",
                    shard.file_name().to_str().unwrap(),
                    o.file_name().to_str().unwrap()
                );
                assert_eq!(hash::hash_file(&o.path()).unwrap(), name);
                assert_eq!(o.metadata().unwrap().permissions().mode() & 0o777, 0o444);
                n += 1;
            }
        }
        n
    }

    #[test]
    fn insert_file_each_mode() {
        for m in ["copy", "hardlink", "reflink"] {
            let d = tempfile::tempdir().unwrap();
            let f = d.path().join("f.txt");
            fs::write(&f, b"hello").unwrap();
            let cache = d.path().join("cache");
            let r = insert(&f, &cache, None, modes(&[m, "copy"])).unwrap();
            assert_eq!(r.hash, hash::hash_bytes(b"hello"));
            assert_eq!((r.size, r.nfiles, r.is_dir), (5, 1, false));
            assert_eq!(all_objects_valid(&cache), 1);
            assert_eq!(fs::read(&f).unwrap(), b"hello");
            let obj = Cache::new(&cache).object_path(&r.hash).unwrap();
            let same = fs::metadata(&obj).unwrap().ino() == fs::metadata(&f).unwrap().ino();
            assert_eq!(same, m == "hardlink", "{m}");
            // re-insert: the object is not rewritten
            let ino = fs::metadata(&obj).unwrap().ino();
            insert(&f, &cache, None, modes(&[m, "copy"])).unwrap();
            assert_eq!(fs::metadata(&obj).unwrap().ino(), ino);
            assert!(Cache::new(&cache).contains(&r.hash, false).unwrap());
        }
    }

    #[test]
    fn insert_dir_dedups_and_writes_manifest() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("out");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("a"), b"same").unwrap();
        fs::write(root.join("sub/b"), b"same").unwrap();
        fs::write(root.join("run.sh"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("a", root.join("ln")).unwrap();
        let cache = d.path().join("cache");
        let state = d.path().join("state");
        let before = crate::index::hash_path(&root, None).unwrap();
        let r = insert(&root, &cache, Some(&state), modes(&["hardlink", "copy"])).unwrap();
        assert_eq!(r, before, "insert hashes like hash_path");
        assert_eq!(all_objects_valid(&cache), 3); // "same", run.sh, manifest
        let c = Cache::new(&cache);
        let m = c.read_manifest(&r.hash).unwrap();
        assert_eq!(m.entries.len(), 4);
        assert!(c.contains(&r.hash, true).unwrap());
        // exec file was copied, keeps its mode; hard-linked ones are read-only
        let md = fs::metadata(root.join("run.sh")).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o755);
        assert_eq!(
            fs::metadata(root.join("a")).unwrap().ino(),
            fs::metadata(root.join("sub/b")).unwrap().ino()
        );
        // second insert with the index: same result
        let r2 = insert(&root, &cache, Some(&state), modes(&["hardlink"])).unwrap();
        assert_eq!(r2, r);
        assert_eq!(all_objects_valid(&cache), 3);
    }

    #[test]
    fn stale_temps_are_cleaned() {
        let d = tempfile::tempdir().unwrap();
        let files = d.path().join("files");
        fs::create_dir_all(&files).unwrap();
        // pid 0x7fffffff does not exist
        fs::write(files.join(".pvtmp-2147483646-1-aa"), b"x").unwrap();
        fs::create_dir(files.join(".pvold-2147483646-2-bb")).unwrap();
        let mine = files.join(format!(".pvtmp-{}-3-cc", std::process::id()));
        fs::write(&mine, b"x").unwrap();
        clean_stale(&files);
        let left: Vec<_> = fs::read_dir(&files).unwrap().flatten().collect();
        assert_eq!(left.len(), 1);
        assert!(mine.exists());
    }

    #[test]
    fn unsafe_manifest_is_not_contained() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::new(d.path());
        let fh = hash::hex(&blake3::hash(b"x"));
        let man = format!(
            "{{\"pivot_manifest\":1}}\n{{\"path\":\"../x\",\"hash\":\"{fh}\",\"size\":1,\"exec\":false}}\n"
        );
        for (data, is_dir) in [(b"x".to_vec(), false), (man.into_bytes(), true)] {
            let h = hash::hex(&blake3::hash(&data));
            let p = c.object_path(&h).unwrap();
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, &data).unwrap();
            // the file object is there, the manifest naming `../x` is not restorable
            assert_eq!(c.contains(&h, is_dir).unwrap(), !is_dir);
        }
    }

    #[test]
    fn bad_hash_is_invalid() {
        let c = Cache::new(Path::new("/c"));
        assert!(c.object_path("xyz").is_err());
        assert!(c.object_path(&"A".repeat(64)).is_err());
    }
}
