//! The stat index: (dev, inode) → (size, `mtime_ns`, `ctime_ns`, `recorded_ns`, hash), so that
//! an unchanged file costs one stat and no read. Disposable: missing, corrupt or unreadable means
//! "start empty", never "trust".
//!
//! File: `<state_dir>/index/stat.idx` (format in docs/formats.md, "Stat index"), written with
//! `write_atomic` (kill point `index_write`) while holding `flock` on `<state_dir>/index/lock`.
//! Writers re-read the file under the lock and merge, so concurrent processes only lose time,
//! never correctness. Readers take no lock: the file is only ever replaced by rename.
//!
//! Racily clean: an entry is trusted only if the file's mtime is older than the moment its stat
//! was taken by more than the filesystem's timestamp granularity. A write landing in the same
//! timestamp tick as that stat would otherwise leave size and mtime unchanged. The ctime must
//! still match exactly, but is not part of the racy test (as in git): pivot's own link and chmod
//! of a file it has just cached move the ctime right before the recorded stat, which would make
//! every entry an insert records untrusted, and the next `status` of a 1,000,000-file output
//! re-read all of it. What that leaves open is a same-size write whose mtime is set back with
//! utime(2) within the same clock tick after pivot's stat.
//!
//! Files on the state directory's own filesystem, when that is a local one with fine timestamps
//! (ext4, XFS, btrfs, tmpfs, F2FS, ZFS), are compared with that filesystem's own clock, read
//! (as git compares with the index file's mtime) from the mtime of `<index>/clock` touched just
//! before the stats: an entry is trusted iff `mtime < recorded_ns`, i.e. the file's last write
//! fell in an earlier tick than the stat, so any later write moves the mtime. A stage's output
//! hashed a few milliseconds after the stage returns is then trusted by the very next command.
//! Everything else (network and FUSE filesystems with server clocks, FAT's 2 s mtimes, unknown
//! filesystems) keeps a 2 s window against the wall clock.

use std::collections::HashMap;
use std::fs::{self, File, Metadata, OpenOptions};
use std::hash::BuildHasherDefault;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::atomic;
use crate::counters;
use crate::error::{Error, IoContext, Result};
use crate::hash;
use crate::stat::{ctime_ns, mtime_ns, unchanged, Ctime};

pub const RACY_WINDOW_NS: i64 = 2_000_000_000;
/// How far the kernel's coarse timestamp clock may lag the wall clock, with a wide margin (it
/// is at most one jiffy, ≤ 10 ms): the stamp used when the filesystem clock cannot be read.
pub const CLOCK_LAG_NS: i64 = 100_000_000;
const MAGIC: &[u8; 8] = b"PVTSTAT\0";
/// 2: `recorded_ns` is the filesystem clock on the state directory's filesystem (version 1
/// entries were wall-clock stamps and needed a window; they are dropped, costing one re-hash).
const VERSION: u32 = 2;
const HEADER_LEN: usize = 24;
/// Reads of a file whose ctime alone keeps moving (links, not writes) before giving up.
const CTIME_RETRIES: u32 = 5;
const REC_LEN: usize = 80;

type Key = (u64, u64); // (dev, ino)

/// FxHash-style hasher for (dev, ino) keys. Keys come from our own stat calls, not from an
/// adversary, so `SipHash`'s resistance to flooding buys nothing; this multiplicative mix is
/// several times cheaper per lookup (100k lookups per no-op `hash_path` of a large tree) and
/// needs no extra crate.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The in-memory index map.
pub type Map = HashMap<Key, Rec, BuildHasherDefault<KeyHasher>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rec {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// `Index::stamp` of the operation, taken before the stat that this entry describes.
    pub recorded_ns: i64,
    pub hash: [u8; 32],
}

/// `Index::stamp` of `idx` (0 without an index: nothing is recorded then).
pub fn stamp(idx: Option<&Index>) -> i64 {
    idx.map_or(0, Index::stamp)
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn key(m: &Metadata) -> Key {
    (m.dev(), m.ino())
}

fn warn(msg: &str) {
    if std::env::var_os("PIVOT_VERBOSE").is_some_and(|v| !v.is_empty() && v != "0") {
        eprintln!("pivot: warning: {msg}");
    }
}

/// Signature of the on-disk file, to reuse a parsed snapshot within one process.
type Sig = (u64, u64, i64, u64); // (dev, ino, mtime_ns, size)
type Snapshot = Arc<Map>;

fn snapshot_cache() -> &'static Mutex<HashMap<PathBuf, (Sig, Snapshot)>> {
    static C: OnceLock<Mutex<HashMap<PathBuf, (Sig, Snapshot)>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

pub struct Index {
    dir: PathBuf,
    /// Device of the state directory when it is a local filesystem with fine timestamps: files
    /// on it are compared with the filesystem clock (no window), everything else gets
    /// `RACY_WINDOW_NS`.
    local_dev: Option<u64>,
    /// `stamp()`, taken once per loaded index (one load per operation).
    stamp: OnceLock<i64>,
    base: Snapshot,
    /// This process's deferred entries (see `defer_saves`), consulted before `base`.
    overlay: Option<Arc<Map>>,
    pending: Mutex<Vec<(Key, Rec)>>,
    /// Set when the on-disk index was unusable and is being rebuilt.
    pub warning: Option<String>,
}

impl Index {
    pub fn file(dir: &Path) -> PathBuf {
        dir.join("stat.idx")
    }

    /// Load the index under `<state_dir>/index/`; never fails (a bad index starts empty).
    /// While saves are deferred, the view includes this process's unsaved entries.
    pub fn load(state_dir: &Path) -> Index {
        let dir = state_dir.join("index");
        let local_dev = local_fs_dev(state_dir);
        if let Some(d) = deferred().lock().unwrap().get(&dir) {
            return Index {
                base: d.base.clone(),
                overlay: Some(d.overlay.clone()),
                local_dev,
                stamp: OnceLock::new(),
                dir,
                pending: Mutex::new(Vec::new()),
                warning: None,
            };
        }
        let (base, warning) = load_snapshot(&Index::file(&dir));
        if let Some(w) = &warning {
            counters::count_rebuilt();
            warn(w);
        }
        Index {
            dir,
            local_dev,
            stamp: OnceLock::new(),
            base,
            overlay: None,
            pending: Mutex::new(Vec::new()),
            warning,
        }
    }

    #[inline]
    fn get(&self, k: &Key) -> Option<&Rec> {
        match &self.overlay {
            Some(o) => o.get(k).or_else(|| self.base.get(k)),
            None => self.base.get(k),
        }
    }

    /// The racily-clean window for a file on device `dev`: none on the state directory's local
    /// filesystem, whose entries carry that filesystem's own clock (see `stamp`).
    #[inline]
    fn window(&self, dev: u64) -> i64 {
        if self.local_dev == Some(dev) {
            0
        } else {
            RACY_WINDOW_NS
        }
    }

    /// The `recorded_ns` for entries describing stats taken after this call. On a local state
    /// filesystem: its clock, as the mtime of `<index>/clock` just touched (never later than the
    /// wall clock; if the file cannot be touched, the wall clock less `CLOCK_LAG_NS`). Elsewhere
    /// the wall clock, with `RACY_WINDOW_NS` applied at lookup. Computed once per loaded index:
    /// an earlier stamp is only more conservative.
    pub fn stamp(&self) -> i64 {
        *self.stamp.get_or_init(|| match self.local_dev {
            Some(_) => {
                fs_clock(&self.dir).map_or_else(|| now_ns() - CLOCK_LAG_NS, |t| t.min(now_ns()))
            }
            None => now_ns(),
        })
    }

    /// The hash recorded for a file with this (l)stat, if the entry is still trustworthy.
    pub fn lookup(&self, m: &Metadata) -> Option<String> {
        let r = self.get(&key(m))?;
        let (mt, ct) = (mtime_ns(m), ctime_ns(m));
        let fresh = r.size == m.len() && r.mtime_ns == mt && r.ctime_ns == ct;
        let racy = mt >= r.recorded_ns - self.window(m.dev());
        (fresh && !racy).then(|| hash::hex(&blake3::Hash::from_bytes(r.hash)))
    }

    /// `lookup` from raw `lstat` fields, giving the hash bytes (the directory walk's fast path).
    #[inline]
    pub fn lookup_raw(&self, st: &libc::stat) -> Option<[u8; 32]> {
        let r = self.get(&(st.st_dev, st.st_ino))?;
        let mt = st.st_mtime * 1_000_000_000 + st.st_mtime_nsec;
        let ct = st.st_ctime * 1_000_000_000 + st.st_ctime_nsec;
        let fresh = r.size == st.st_size.cast_unsigned() && r.mtime_ns == mt && r.ctime_ns == ct;
        let racy = mt >= r.recorded_ns - self.window(st.st_dev);
        (fresh && !racy).then_some(r.hash)
    }

    /// The hash recorded for a cache object with this (l)stat, if its *content* is vouched for:
    /// size and mtime equal the entry's and the mtime is not racy (see the module doc), so any
    /// later write moves it. ctime is deliberately not
    /// compared: every link or unlink of any of the object's hard links (a hardlink restore,
    /// `rm` of a workspace output) moves it. So a write to the object (even through a
    /// hard-linked workspace file) or replacing it (new inode) is always noticed; a write whose
    /// mtime is then set back with utime(2), and silent media bit-rot, are not (that is what
    /// `pivot verify --cache` is for).
    pub fn lookup_object(&self, m: &Metadata) -> Option<String> {
        let r = self.get(&key(m))?;
        let mt = mtime_ns(m);
        let ok = r.size == m.len() && r.mtime_ns == mt && mt < r.recorded_ns - self.window(m.dev());
        ok.then(|| hash::hex(&blake3::Hash::from_bytes(r.hash)))
    }

    /// Remember `hash` for a file whose stat `m` was taken at `recorded_ns`.
    pub fn record(&self, m: &Metadata, recorded_ns: i64, h: &blake3::Hash) {
        let rec = Rec {
            size: m.len(),
            mtime_ns: mtime_ns(m),
            ctime_ns: ctime_ns(m),
            recorded_ns,
            hash: *h.as_bytes(),
        };
        if self.get(&key(m)) != Some(&rec) {
            self.pending.lock().unwrap().push((key(m), rec));
        }
    }

    /// Merge new entries into the on-disk index under the lock. Nothing to do → no write.
    /// While saves are deferred (`defer_saves`), the entries are kept for `flush_deferred`.
    pub fn save(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        if pending.is_empty() && self.warning.is_none() {
            return Ok(());
        }
        if DEFER.load(Ordering::SeqCst) {
            self.defer(pending);
            return Ok(());
        }
        write_merged(&self.dir, pending)
    }

    /// Keep `pending` for `flush_deferred`; later loads in this process see it.
    fn defer(&self, pending: Vec<(Key, Rec)>) {
        let mut all = deferred().lock().unwrap();
        let d = all.entry(self.dir.clone()).or_insert_with(|| Deferred {
            base: self.base.clone(),
            overlay: Arc::default(),
        });
        // Copied only if an Index loaded earlier still holds this overlay (rare, and small).
        let overlay = Arc::make_mut(&mut d.overlay);
        for (k, r) in pending {
            overlay.insert(k, r);
        }
    }
}

/// The current time of the filesystem holding `dir`, in its own timestamp granularity: touch
/// `dir/clock` (utimensat with no times sets it to the filesystem's current time) and read it.
fn fs_clock(dir: &Path) -> Option<i64> {
    let p = dir.join("clock");
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: a valid NUL-terminated path; a null `times` means "now" for both stamps.
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) } != 0 {
        fs::create_dir_all(dir).ok()?;
        // Creating it stamps it with the current time as well.
        OpenOptions::new().create(true).append(true).open(&p).ok()?;
    }
    fs::metadata(&p).ok().map(|m| mtime_ns(&m))
}

/// The device of `path` (or its nearest existing ancestor) if it is a local filesystem whose
/// timestamps are finer than the racy window: ext4, XFS, btrfs, tmpfs, F2FS, ZFS. Network and
/// FUSE filesystems (server clocks), FAT/exFAT (2 s mtimes) and anything unknown keep 2 s.
fn local_fs_dev(path: &Path) -> Option<u64> {
    const LOCAL: [i64; 6] = [
        0xEF53,      // ext2/3/4
        0x5846_5342, // XFS
        0x9123_683E, // btrfs
        0x0102_1994, // tmpfs
        0xF2F5_2010, // F2FS
        0x2FC1_2FC1, // ZFS
    ];
    let mut p = path;
    let meta = loop {
        match fs::metadata(p) {
            Ok(m) => break m,
            Err(_) => p = p.parent()?,
        }
    };
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statfs into a zeroed struct with a valid NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &raw mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between libc targets
    let t = st.f_type as i64;
    LOCAL.contains(&t).then(|| meta.dev())
}

/// Saves deferred to the end of the command: one index write per command instead of one per
/// hashing call (a 200-stage no-op made 200 fsynced writes of the whole index). The index is
/// disposable, so entries lost to a crash before the flush only cost a re-hash.
static DEFER: AtomicBool = AtomicBool::new(false);

struct Deferred {
    /// The snapshot loaded before deferring started (shared, never copied).
    base: Snapshot,
    /// This process's unsaved entries (later loads see them through `Index::overlay`).
    overlay: Arc<Map>,
}

fn deferred() -> &'static Mutex<HashMap<PathBuf, Deferred>> {
    static D: OnceLock<Mutex<HashMap<PathBuf, Deferred>>> = OnceLock::new();
    D.get_or_init(Default::default)
}

/// Start (or stop, after flushing) deferring index saves in this process.
pub fn defer_saves(on: bool) -> Result<()> {
    if on {
        DEFER.store(true, Ordering::SeqCst);
        Ok(())
    } else {
        let r = flush_deferred();
        DEFER.store(false, Ordering::SeqCst);
        r
    }
}

/// Write every deferred entry (merged under each index's lock). The first error is returned
/// after all indexes were tried.
pub fn flush_deferred() -> Result<()> {
    let all = std::mem::take(&mut *deferred().lock().unwrap());
    let mut first = Ok(());
    for (dir, d) in all {
        // Release the snapshot before merging, so the merge can take it over without a copy.
        drop(d.base);
        let pending: Vec<(Key, Rec)> = Arc::try_unwrap(d.overlay)
            .unwrap_or_else(|a| (*a).clone())
            .into_iter()
            .collect();
        if let Err(e) = write_merged(&dir, pending) {
            if first.is_ok() {
                first = Err(e);
            }
        }
    }
    first
}

/// Merge `pending` into the on-disk index in `dir` under its lock and write it atomically.
fn write_merged(dir: &Path, pending: Vec<(Key, Rec)>) -> Result<()> {
    fs::create_dir_all(dir).at(dir)?;
    let lock_path = dir.join("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .at(&lock_path)?;
    flock(&lock, &lock_path)?;
    let file = Index::file(dir);
    // Re-read under the lock: another process may have saved since we loaded.
    // Taken out of the in-process cache so that, when no Index holds it any more, it is merged
    // without a copy (a 1,000,000-file index is ~85 MB per copy).
    let (current, _) = load_snapshot(&file);
    snapshot_cache().lock().unwrap().remove(&file);
    let mut map = Arc::try_unwrap(current).unwrap_or_else(|a| (*a).clone());
    for (k, r) in pending {
        match map.get(&k) {
            Some(old) if old.recorded_ns > r.recorded_ns => {}
            _ => {
                map.insert(k, r);
            }
        }
    }
    let bytes = encode(&map);
    atomic::write_atomic(&file, &bytes, Some("index_write"))?;
    if let Ok(m) = fs::metadata(&file) {
        let sig = (m.dev(), m.ino(), mtime_ns(&m), m.len());
        snapshot_cache()
            .lock()
            .unwrap()
            .insert(file, (sig, Arc::new(map)));
    }
    Ok(()) // the lock is released when `lock` is dropped
}

fn flock(f: &File, path: &Path) -> Result<()> {
    loop {
        // SAFETY: flock on a valid, owned fd.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::io(path, e));
        }
    }
}

fn load_snapshot(file: &Path) -> (Snapshot, Option<String>) {
    let sig = match fs::metadata(file) {
        Ok(m) => (m.dev(), m.ino(), mtime_ns(&m), m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Arc::default(), None),
        Err(e) => {
            return (
                Arc::default(),
                Some(format!("{}: {e}; rebuilding", file.display())),
            )
        }
    };
    if let Some((s, snap)) = snapshot_cache().lock().unwrap().get(file) {
        if *s == sig {
            return (snap.clone(), None);
        }
    }
    let data = match fs::read(file) {
        Ok(d) => d,
        Err(e) => {
            return (
                Arc::default(),
                Some(format!("{}: {e}; rebuilding", file.display())),
            )
        }
    };
    match decode(&data) {
        Ok(map) => {
            let snap = Arc::new(map);
            snapshot_cache()
                .lock()
                .unwrap()
                .insert(file.to_path_buf(), (sig, snap.clone()));
            (snap, None)
        }
        Err(why) => (
            Arc::default(),
            Some(format!(
                "stat index {} is {why}; rebuilding",
                file.display()
            )),
        ),
    }
}

/// Serialize (records sorted by key so equal indexes give equal bytes).
pub fn encode(map: &Map) -> Vec<u8> {
    let mut keys: Vec<&Key> = map.keys().collect();
    keys.sort_unstable();
    let mut out = Vec::with_capacity(HEADER_LEN + map.len() * REC_LEN + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(map.len() as u64).to_le_bytes());
    for k in keys {
        let r = &map[k];
        out.extend_from_slice(&k.0.to_le_bytes());
        out.extend_from_slice(&k.1.to_le_bytes());
        out.extend_from_slice(&r.size.to_le_bytes());
        out.extend_from_slice(&r.mtime_ns.to_le_bytes());
        out.extend_from_slice(&r.ctime_ns.to_le_bytes());
        out.extend_from_slice(&r.recorded_ns.to_le_bytes());
        out.extend_from_slice(&r.hash);
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

/// Parse and verify; the error says why the file cannot be trusted.
pub fn decode(data: &[u8]) -> std::result::Result<Map, &'static str> {
    if data.len() < HEADER_LEN + 32 || &data[..8] != MAGIC {
        return Err("not a pivot stat index (bad header)");
    }
    let u64_at = |i: usize| u64::from_le_bytes(data[i..i + 8].try_into().unwrap());
    let i64_at = |i: usize| i64::from_le_bytes(data[i..i + 8].try_into().unwrap());
    if u32::from_le_bytes(data[8..12].try_into().unwrap()) != VERSION {
        return Err("of an unknown version");
    }
    let n = usize::try_from(u64_at(16)).map_err(|_| "truncated")?;
    if n.checked_mul(REC_LEN)
        .and_then(|b| b.checked_add(HEADER_LEN + 32))
        != Some(data.len())
    {
        return Err("truncated");
    }
    let body = &data[..data.len() - 32];
    if blake3::hash(body).as_bytes() != &data[data.len() - 32..] {
        return Err("corrupt (checksum mismatch)");
    }
    let mut map = Map::with_capacity_and_hasher(n, BuildHasherDefault::default());
    for j in 0..n {
        let o = HEADER_LEN + j * REC_LEN;
        let rec = Rec {
            size: u64_at(o + 16),
            mtime_ns: i64_at(o + 24),
            ctime_ns: i64_at(o + 32),
            recorded_ns: i64_at(o + 40),
            hash: data[o + 48..o + 80].try_into().unwrap(),
        };
        map.insert((u64_at(o), u64_at(o + 8)), rec);
    }
    Ok(map)
}

/// Hash a regular file, via the index when it has a trusted entry for `seen` (the caller's
/// stat of `path`). Returns the hash and the metadata the hash describes. A file that changes
/// while it is read is `Error::SourceChanged`.
pub fn hash_file_with(
    path: &Path,
    seen: &Metadata,
    idx: Option<&Index>,
) -> Result<(String, Metadata)> {
    if let Some(h) = idx.and_then(|i| i.lookup(seen)) {
        counters::count_hits(1);
        return Ok((h, seen.clone()));
    }
    let recorded = stamp(idx);
    let mut f = File::open(path).at(path)?;
    let mut before = f.metadata().at(path)?;
    // Only the ctime moving means a link or chmod, not a write: another thread or process
    // hard-linking the same cache object (a parallel checkout of two outputs with one content).
    // Read again rather than call the file changed; a few rounds, since writes move the mtime.
    let mut attempts = 0;
    let h = loop {
        let h = match hash::hash_open_file(&mut f, before.len()) {
            Ok(h) => h,
            // A guarded mmap saw the file shrink under it: report it like any other change.
            Err(e) if hash::is_truncated(&e) => {
                return Err(Error::SourceChanged {
                    path: path.into(),
                    msg: "truncated during hashing".into(),
                })
            }
            Err(e) => return Err(e).at(path),
        };
        counters::count_read(before.len());
        let after = f.metadata().at(path)?;
        if unchanged(&before, &after, Ctime::Compare) {
            break h;
        }
        attempts += 1;
        if attempts >= CTIME_RETRIES || !unchanged(&before, &after, Ctime::Ignore) {
            return Err(Error::SourceChanged {
                path: path.into(),
                msg: "size, mtime or ctime changed during hashing".into(),
            });
        }
        before = after;
        f.seek(SeekFrom::Start(0)).at(path)?;
    };
    if let Some(i) = idx {
        i.record(&before, recorded, &h);
    }
    Ok((hash::hex(&h), before))
}

/// Save the index, warning (with `PIVOT_VERBOSE`) instead of failing: the index is an
/// optimisation, failing to save it must not fail the operation that used it.
pub fn save_quietly(idx: &Index) {
    if let Err(e) = idx.save() {
        warn(&format!("could not save the stat index: {e}"));
    }
}

#[cfg(test)]
mod tests;
