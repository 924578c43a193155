//! blake3 hashing of bytes, files and many files, plus the thread-pool sizing.
//!
//! Files of `MMAP_THRESHOLD` bytes or more are mapped and hashed in place with `update_rayon`
//! (no copy out of the page cache); the mapping is guarded (`mmap_guard`): a file truncated while
//! it is being hashed gives an error, never SIGBUS. Smaller files, and big ones whose mapping
//! fails, are hashed with buffered reads.
//!
//! API used by the cache code:
//! - `ensure_pool()` before any rayon work (sizes the global pool from `PIVOT_THREADS`);
//! - `hash_bytes`, `hash_file`, `hash_files`, `hash_open_file(&mut File, size)`;
//! - `hash_checked`: hash an open file and check that it did not change while it was read.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Once};

use rayon::prelude::*;

use crate::error::{Error, IoContext, Result};
use crate::mmap_guard::GuardedMap;
use crate::stat::{self, Ctime};

/// Files at least this large are hashed with `blake3::Hasher::update_rayon` on big chunks.
///
/// Measured on this 2-core AVX2 VM (the blake3 Python package = same crate, in-memory, best of
/// 30, machine busy with other builds so ±30%): one thread ~3.3 GB/s at every size; two threads
/// are slower below 512 KiB (2.2 GB/s at 256 KiB), break even at 0.5–1 MiB (3.2–3.8 GB/s) and
/// win from a few MiB. 4 MiB keeps a margin for the reader thread `hash_large` spawns per file,
/// and below it `hash_files` already spreads many files over the cores.
pub const PARALLEL_THRESHOLD: u64 = 4 << 20;

/// Read size for the multi-threaded path: a power of two so blake3 subtrees stay aligned across
/// `update_rayon` calls.
pub const PARALLEL_CHUNK: usize = 8 << 20;

/// Files at least this large are hashed through a guarded mmap (`hash_mapped`).
///
/// Measured (release build, page cache warm, this 2-core VM under load from other builds, best
/// of 9 interleaved runs; mmap vs the read path):
/// - `hash_file`, one file: 1 MiB 0.39 vs 0.42 ms; 2 MiB 0.53 vs 0.75; 4 MiB 0.89 vs 5.1;
///   16 MiB 5.7 vs 21; 64 MiB 22 vs 47 (the read path's 2 x 8 MiB buffers and reader thread
///   per file cost most at 4–16 MiB);
/// - `hash_files`, 48 files at once (all cores busy): 1 MiB 13.4 vs 11.8 ms (read wins: the
///   mmap/munmap and its TLB shootdowns are not repaid), 2 MiB 21.2 vs 22.0, 3 MiB 35.5 vs 35.0.
///
/// So the switch sits at `PARALLEL_THRESHOLD`: below it mapping gains nothing under load.
pub const MMAP_THRESHOLD: u64 = PARALLEL_THRESHOLD;

/// Read size for the serial path (fits L2 comfortably, amortises the syscall).
const SERIAL_CHUNK: usize = 256 << 10;

/// Build rayon's global pool once, sized by env `PIVOT_THREADS` (default: CPU count).
pub fn ensure_pool() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let n = std::env::var("PIVOT_THREADS")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            });
        // Fails only if something already built the global pool; then that pool is used.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("pivot-hash-{i}"))
            .build_global();
    });
}

/// Lowercase hex of a digest.
pub fn hex(h: &blake3::Hash) -> String {
    h.to_hex().to_string()
}

/// blake3 hex of a byte slice (multi-threaded for large inputs).
pub fn hash_bytes(data: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    if data.len() as u64 >= PARALLEL_THRESHOLD {
        ensure_pool();
        h.update_rayon(data);
    } else {
        h.update(data);
    }
    hex(&h.finalize())
}

/// Hash an open file from its current position to EOF. `size_hint` (usually the stat size)
/// chooses the serial or the multi-threaded path.
///
/// A big file truncated while it is hashed is an error that `is_truncated` recognises (callers
/// report it as the source having changed); the hash of the zeros read is never returned.
pub fn hash_open_file(f: &mut File, size_hint: u64) -> io::Result<blake3::Hash> {
    if size_hint >= MMAP_THRESHOLD {
        if let Some(r) = hash_mapped(f) {
            return r;
        }
    }
    if size_hint >= PARALLEL_THRESHOLD {
        return hash_large(f);
    }
    let mut h = blake3::Hasher::new();
    // Below PARALLEL_THRESHOLD: the size fits usize.
    let cap = usize::try_from(size_hint).map_or(SERIAL_CHUNK, |n| SERIAL_CHUNK.min(n + 1));
    let mut buf = vec![0u8; cap.max(4096)];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                h.update(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(h.finalize())
}

/// Hash from the current position to the end (as of the stat below) through a guarded mapping;
/// `None` if the file cannot be mapped (then it is read). Leaves the position at that end.
fn hash_mapped(f: &mut File) -> Option<io::Result<blake3::Hash>> {
    let pos = usize::try_from(f.stream_position().ok()?).ok()?;
    let len = f.metadata().ok()?.len();
    let map = GuardedMap::new(f, usize::try_from(len).ok()?)?;
    let data = map.as_slice().get(pos..)?;
    ensure_pool();
    let mut h = blake3::Hasher::new();
    h.update_rayon(data);
    if map.truncated() {
        return Some(Err(io::Error::other(Truncated)));
    }
    drop(map);
    Some(f.seek(SeekFrom::Start(len)).map(|_| h.finalize()))
}

/// The io error `hash_open_file` returns when a mapped file was cut short while it was hashed.
#[derive(Debug)]
struct Truncated;

impl std::fmt::Display for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("truncated while it was being hashed")
    }
}

impl std::error::Error for Truncated {}

/// Whether `e` is `hash_open_file`'s "file truncated while hashed" error.
pub fn is_truncated(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(<dyn std::error::Error + Send + Sync + 'static>::is::<Truncated>)
}

/// Large files: a reader thread fills one buffer while rayon hashes the previous one, so the
/// copy out of the page cache overlaps with hashing instead of adding to it.
fn hash_large(f: &mut File) -> io::Result<blake3::Hash> {
    ensure_pool();
    let (tx_full, rx_full) = mpsc::sync_channel::<io::Result<(Vec<u8>, usize)>>(1);
    let (tx_empty, rx_empty) = mpsc::sync_channel::<Vec<u8>>(2);
    std::thread::scope(|s| {
        s.spawn(move || {
            while let Ok(mut buf) = rx_empty.recv() {
                match read_full(f, &mut buf) {
                    Ok(n) => {
                        let last = n < buf.len();
                        if tx_full.send(Ok((buf, n))).is_err() || last {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx_full.send(Err(e));
                        break;
                    }
                }
            }
        });
        // Owned here so an early return drops them and unblocks the reader before the join.
        let (tx_empty, rx_full) = (tx_empty, rx_full);
        for _ in 0..2 {
            let _ = tx_empty.send(vec![0u8; PARALLEL_CHUNK]);
        }
        let mut h = blake3::Hasher::new();
        for msg in &rx_full {
            let (buf, n) = msg?;
            h.update_rayon(&buf[..n]);
            let _ = tx_empty.send(buf);
        }
        Ok(h.finalize())
    })
}

/// Fill `buf` as far as possible; returns bytes read (short only at EOF).
pub fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Hash the open file `f` from its current position, `before` being the stat the caller took
/// just before, then stat it again: the hash and that second stat when the two stats agree
/// (`stat::unchanged` with `ctime`), `None` when the file changed meanwhile (the bytes read may
/// not be the ones `before` describes). A truncation under the mapping is an error that
/// `is_truncated` recognises.
pub fn hash_checked(
    f: &mut File,
    before: &Metadata,
    ctime: Ctime,
) -> io::Result<Option<(blake3::Hash, Metadata)>> {
    let h = hash_open_file(f, before.len())?;
    let after = f.metadata()?;
    Ok(stat::unchanged(before, &after, ctime).then_some((h, after)))
}

/// blake3 hex of a file's bytes; errors name the file. A file whose size, mtime or ctime changes
/// while it is read (or that is truncated under the mapping) is `Error::SourceChanged`, like
/// `index::hash_file_with`.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).at(path)?;
    let before = f.metadata().at(path)?;
    match hash_checked(&mut f, &before, Ctime::Compare) {
        Ok(Some((h, _))) => Ok(hex(&h)),
        Ok(None) => Err(source_changed(path)),
        Err(e) if is_truncated(&e) => Err(source_changed(path)),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn source_changed(path: &Path) -> Error {
    Error::SourceChanged {
        path: path.into(),
        msg: "size, mtime or ctime changed, or it was truncated, during hashing".into(),
    }
}

/// Hash many files in parallel on the global pool; the first error wins.
pub fn hash_files(paths: &[PathBuf]) -> Result<Vec<String>> {
    ensure_pool();
    paths.par_iter().map(|p| hash_file(p)).collect()
}

/// True if `s` is a 64-character lowercase hex blake3 digest.
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Raw 32 bytes of a 64-hex digest (None if malformed: not 64 lowercase hex digits).
pub fn raw_from_hex(hex: &[u8]) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibble(hex[2 * i])? << 4) | nibble(hex[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| u8::try_from(i * 31 % 251).unwrap())
            .collect()
    }

    #[test]
    fn empty_hash_is_known() {
        assert_eq!(
            hash_bytes(b""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn file_hash_matches_bytes_hash_for_all_paths() {
        let d = tempfile::tempdir().unwrap();
        let sizes = [
            0usize,
            1,
            1023,
            1024,
            (1 << 20) + 1,
            usize::try_from(PARALLEL_THRESHOLD).unwrap() + 7,
            PARALLEL_CHUNK * 2 + 3,
        ];
        let mut paths = vec![];
        for (i, n) in sizes.iter().enumerate() {
            let p = d.path().join(format!("f{i}"));
            std::fs::write(&p, data(*n)).unwrap();
            let expect = hex(&blake3::hash(&data(*n)));
            assert_eq!(hash_file(&p).unwrap(), expect, "size {n}");
            assert_eq!(hash_bytes(&data(*n)), expect);
            paths.push(p);
        }
        let many = hash_files(&paths).unwrap();
        assert_eq!(many[3], hash_bytes(&data(1024)));
    }

    #[test]
    fn mmap_threshold_sizes_match_bytes_hash() {
        let d = tempfile::tempdir().unwrap();
        let t = usize::try_from(MMAP_THRESHOLD).unwrap();
        for n in [t - 1, t, t + 1, 3 * t + 7] {
            let path = d.path().join(format!("f{n}"));
            std::fs::write(&path, data(n)).unwrap();
            assert_eq!(
                hash_file(&path).unwrap(),
                hex(&blake3::hash(&data(n))),
                "size {n}"
            );
            // From a non-zero position, as `hash_open_file` promises.
            let mut file = File::open(&path).unwrap();
            file.seek(SeekFrom::Start(5)).unwrap();
            let digest = hash_open_file(&mut file, n as u64).unwrap();
            assert_eq!(digest, blake3::hash(&data(n)[5..]));
        }
    }

    #[test]
    fn truncated_while_hashing_is_source_changed_not_sigbus() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        let n: u64 = 256 << 20;
        let head = data(1 << 20);
        std::fs::write(&p, &head).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        file.set_len(n).unwrap(); // sparse tail of zeros
        let full = hash_file(&p).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let mut changed = 0;
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    file.set_len(head.len() as u64).unwrap();
                    file.set_len(n).unwrap();
                }
            });
            // At least 20 hashes, and more until one overlaps a truncation: on a loaded
            // machine the truncating thread may not be scheduled during the first ones.
            let start = std::time::Instant::now();
            let mut tries = 0;
            while tries < 20 || (changed == 0 && start.elapsed().as_secs() < 60) {
                tries += 1;
                match hash_file(&p) {
                    Ok(h) => assert!(h == full || h == hash_bytes(&head), "inconsistent hash"),
                    Err(Error::SourceChanged { path, .. }) => {
                        assert_eq!(path, p);
                        changed += 1;
                    }
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        assert!(changed > 0, "the truncation loop never overlapped a hash");
    }

    #[test]
    fn missing_file_names_path() {
        let e = hash_file(Path::new("/no/such/file")).unwrap_err();
        assert!(e.to_string().contains("/no/such/file"));
    }

    #[test]
    fn hex64() {
        assert!(is_hex64(&"a".repeat(64)));
        assert!(!is_hex64(&"A".repeat(64)));
        assert!(!is_hex64(&"a".repeat(63)));
    }
}
