//! `cache_gc` (docs/formats.md, "Garbage collection"): remove the cache objects no root needs.
//!
//! Roots are `(hash, is_dir)` pairs: a directory root keeps its manifest and every file object
//! it names. An object outside the roots is removed only when its mtime and ctime are both
//! older than the grace period: an insert creates or links the object (ctime moves), so an
//! object a running `repro` has just put into the cache, and whose lock is not written yet,
//! survives. Garbage manifests go before garbage files, so a crash never leaves a manifest
//! that looks complete but names a removed file.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::atomic;
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::hash;
use crate::manifest;

/// What a gc removed (or, dry, would remove).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// (hash, size) of each removed object, sorted by hash.
    pub removed: Vec<(String, u64)>,
    pub bytes: u64,
    /// Objects a root needs.
    pub kept: u64,
    /// Unreferenced objects spared because they are younger than the grace period.
    pub young: u64,
}

struct Candidate {
    hash: String,
    size: u64,
    is_manifest: bool,
}

fn is_manifest(p: &Path) -> bool {
    let mut head = [0u8; 32];
    let Ok(mut f) = fs::File::open(p) else {
        return false;
    };
    let want = manifest::HEADER.len();
    matches!(hash::read_full(&mut f, &mut head[..want]), Ok(n) if &head[..n] == manifest::HEADER)
}

/// The objects `roots` keep: each root, and the files of each directory root. A directory
/// root whose manifest is absent keeps nothing more; one that is corrupt or unreadable is an
/// error (what it needs cannot be known, so nothing may be removed).
fn keep_set(cache: &Cache, roots: &[(String, bool)]) -> Result<HashSet<String>> {
    let mut keep: HashSet<String> = HashSet::with_capacity(roots.len());
    let mut dirs: Vec<&str> = Vec::new();
    for (h, is_dir) in roots {
        cache.object_path(h)?; // validates
        if keep.insert(h.clone()) && *is_dir {
            dirs.push(h);
        }
    }
    let named: Vec<Vec<String>> = dirs
        .par_iter()
        .map(|h| match cache.read_manifest(h) {
            Ok(m) => Ok(m
                .entries
                .into_iter()
                .filter(|e| e.link.is_none())
                .map(|e| e.hash)
                .collect()),
            Err(Error::CacheMissing { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        })
        .collect::<Result<_>>()?;
    keep.extend(named.into_iter().flatten());
    Ok(keep)
}

fn stamp_ns(secs: i64, nsecs: i64) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nsecs)
}

/// Remove every object of `cache_dir` that `roots` do not keep and that is older than
/// `grace`; with `dry_run`, only report what would go. Kill point `gc_object` after each
/// removal.
pub fn gc(
    cache_dir: &Path,
    roots: &[(String, bool)],
    grace: Duration,
    dry_run: bool,
) -> Result<Report> {
    hash::ensure_pool();
    let cache = Cache::new(cache_dir);
    if !dry_run && cache.files.is_dir() {
        cache.prepare()?;
    }
    let keep = keep_set(&cache, roots)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let cutoff = i128::try_from(now.saturating_sub(grace).as_nanos()).unwrap_or(i128::MAX);
    let all = cache.list_objects()?;
    let mut report = Report::default();
    let garbage: Vec<&String> = all.iter().filter(|h| !keep.contains(*h)).collect();
    report.kept = (all.len() - garbage.len()) as u64;
    let checked: Vec<Option<Candidate>> = garbage
        .par_iter()
        .map(|h| {
            let p = cache.object_path(h)?;
            let md = match fs::symlink_metadata(&p) {
                Ok(md) => md,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io(p, e)),
            };
            let newest =
                stamp_ns(md.mtime(), md.mtime_nsec()).max(stamp_ns(md.ctime(), md.ctime_nsec()));
            if newest > cutoff {
                return Ok(None);
            }
            Ok(Some(Candidate {
                hash: (*h).clone(),
                size: md.len(),
                is_manifest: is_manifest(&p),
            }))
        })
        .collect::<Result<_>>()?;
    let present = checked.iter().filter(|c| c.is_some()).count();
    let mut doomed: Vec<Candidate> = checked.into_iter().flatten().collect();
    report.young = (garbage.len() - present) as u64;
    // Manifests first (stable: by hash within each kind).
    doomed.sort_by(|a, b| b.is_manifest.cmp(&a.is_manifest).then(a.hash.cmp(&b.hash)));
    for c in &doomed {
        if !dry_run {
            let p = cache.object_path(&c.hash)?;
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(p, e)),
            }
            atomic::kill_point("gc_object");
        }
        report.bytes += c.size;
        report.removed.push((c.hash.clone(), c.size));
    }
    report.removed.sort_unstable();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::insert::insert;
    use crate::cache::link::parse_modes;

    #[test]
    fn keeps_roots_and_their_files_removes_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("t");
        fs::create_dir_all(tree.join("s")).unwrap();
        fs::write(tree.join("a"), b"aaaa").unwrap();
        fs::write(tree.join("s/b"), b"bbbb").unwrap();
        let other = d.path().join("o");
        fs::write(&other, b"old output").unwrap();
        let cache_dir = d.path().join("cache");
        let modes = parse_modes(&["copy"]).unwrap();
        let dir = insert(&tree, &cache_dir, None, modes.clone()).unwrap();
        let gone = insert(&other, &cache_dir, None, modes).unwrap();
        // ctime cannot be set back: a zero grace stands for "old", an hour for "young".
        let roots = vec![(dir.hash.clone(), true)];

        let young = gc(&cache_dir, &roots, Duration::from_hours(1), false).unwrap();
        assert_eq!((young.removed.len(), young.young, young.kept), (0, 1, 3));

        let dry = gc(&cache_dir, &roots, Duration::ZERO, true).unwrap();
        assert_eq!(dry.removed, vec![(gone.hash.clone(), 10)]);
        let cache = Cache::new(&cache_dir);
        assert!(cache.contains(&gone.hash, false).unwrap());

        let r = gc(&cache_dir, &roots, Duration::ZERO, false).unwrap();
        assert_eq!((r.removed.len(), r.bytes, r.kept), (1, 10, 3));
        assert!(!cache.contains(&gone.hash, false).unwrap());
        assert!(cache.contains(&dir.hash, true).unwrap());

        // Without roots the directory goes too, manifest included.
        let r = gc(&cache_dir, &[], Duration::ZERO, false).unwrap();
        assert_eq!(r.removed.len(), 3);
        assert!(cache.list_objects().unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_root_manifest_stops_gc() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("t");
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("a"), b"aaaa").unwrap();
        let cache_dir = d.path().join("cache");
        let dir = insert(&tree, &cache_dir, None, parse_modes(&["copy"]).unwrap()).unwrap();
        let cache = Cache::new(&cache_dir);
        let p = cache.object_path(&dir.hash).unwrap();
        fs::remove_file(&p).unwrap();
        fs::write(&p, b"{\"pivot_manifest\":1}\nbroken\n").unwrap();
        let err = gc(
            &cache_dir,
            &[(dir.hash.clone(), true)],
            Duration::ZERO,
            false,
        )
        .unwrap_err();
        assert!(matches!(err, Error::CacheCorrupt { .. }), "{err:?}");
        assert!(cache.contains(&hash::hash_bytes(b"aaaa"), false).unwrap());
        // An absent root manifest keeps nothing more and is no error.
        fs::remove_file(&p).unwrap();
        let r = gc(
            &cache_dir,
            &[(dir.hash.clone(), true)],
            Duration::ZERO,
            false,
        )
        .unwrap();
        assert_eq!(r.removed.len(), 1);
    }
}
