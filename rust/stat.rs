//! Comparing two stats of one file: the single test of "did this file change in between" used
//! by hashing, the cache insert and the restore (docs/formats.md, "Hashing" and "Cache objects
//! and link modes").

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

/// Whether `unchanged` compares the ctime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctime {
    /// Any metadata change counts (chmod, link, rename also move the ctime): workspace files
    /// around a read, where only the bytes pivot read may be recorded.
    Compare,
    /// Only the content counts: the file may legitimately gain or lose hard links meanwhile
    /// (our own `link` during a hardlink insert; a cache object, whose inode every hardlink
    /// restore or `rm` of a restored output touches). Writes still move the mtime.
    Ignore,
}

/// The same inode with the same size and mtime (and ctime, per `ctime`) in both stats: nothing
/// wrote to, truncated or replaced the file between them.
#[inline]
pub fn unchanged(before: &Metadata, after: &Metadata, ctime: Ctime) -> bool {
    same_inode(before, after)
        && before.len() == after.len()
        && mtime_ns(before) == mtime_ns(after)
        && (ctime == Ctime::Ignore || ctime_ns(before) == ctime_ns(after))
}

/// Both stats describe one inode (the same file, or two hard links of it).
#[inline]
pub fn same_inode(a: &Metadata, b: &Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// The mtime in nanoseconds since the epoch.
#[inline]
pub fn mtime_ns(m: &Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

/// The ctime in nanoseconds since the epoch.
#[inline]
pub fn ctime_ns(m: &Metadata) -> i64 {
    m.ctime() * 1_000_000_000 + m.ctime_nsec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn writes_change_and_ctime_is_optional() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"one").unwrap();
        let first = fs::metadata(&p).unwrap();
        assert!(unchanged(
            &first,
            &fs::metadata(&p).unwrap(),
            Ctime::Compare
        ));
        // A hard link moves only the ctime.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::hard_link(&p, dir.path().join("g")).unwrap();
        let linked = fs::metadata(&p).unwrap();
        assert!(unchanged(&first, &linked, Ctime::Ignore));
        assert!(!unchanged(&first, &linked, Ctime::Compare));
        // A write of the same size moves the mtime.
        fs::write(&p, b"two").unwrap();
        assert!(!unchanged(
            &linked,
            &fs::metadata(&p).unwrap(),
            Ctime::Ignore
        ));
        // Another file with the same bytes is another inode.
        let other = dir.path().join("q");
        fs::write(&other, b"two").unwrap();
        assert!(!same_inode(&linked, &fs::metadata(&other).unwrap()));
    }
}
