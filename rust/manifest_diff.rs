//! Differences between two directory manifests (`pivot diff`): which files were added, modified
//! or deleted. Both manifests are sorted bytewise by path (docs/formats.md, "Directory
//! manifest"), so one merge pass over the two entry lists is enough: O(n + m), no hashing of
//! paths, no allocation beyond the result.
//!
//! A side is the empty tree, a directory object in the cache (read, checked against its name and
//! parsed strictly by `manifest::load_from_cache`) or a directory in the workspace (walked and
//! hashed through the stat index, as `hash_path` does). The two sides are loaded in parallel.

use std::cmp::Ordering;
use std::path::Path;

use crate::error::Result;
use crate::index::{self, Index};
use crate::manifest::{self, Entry, Manifest};

/// One side of a comparison.
#[derive(Debug, Clone, Copy)]
pub enum Side<'a> {
    /// No directory (the output does not exist on that side).
    Empty,
    /// A directory object (manifest hash) in the cache.
    Cached(&'a str),
    /// A directory on disk, hashed through the stat index of `state_dir` when one is given.
    Dir(&'a Path),
}

/// Paths (relative to the directory, raw bytes) that differ, each list sorted bytewise.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<Vec<u8>>,
    pub modified: Vec<Vec<u8>>,
    pub deleted: Vec<Vec<u8>>,
}

/// An entry changed when its content, exec bit or link target differs (the size follows the
/// content).
fn changed(a: &Entry, b: &Entry) -> bool {
    a.hash != b.hash || a.exec != b.exec || a.link != b.link
}

/// Merge pass over two manifests sorted bytewise by path.
pub fn diff(old: &Manifest, new: &Manifest) -> Diff {
    let (a, b) = (&old.entries, &new.entries);
    let mut out = Diff::default();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].path.cmp(&b[j].path) {
            Ordering::Less => {
                out.deleted.push(a[i].path.clone());
                i += 1;
            }
            Ordering::Greater => {
                out.added.push(b[j].path.clone());
                j += 1;
            }
            Ordering::Equal => {
                if changed(&a[i], &b[j]) {
                    out.modified.push(b[j].path.clone());
                }
                i += 1;
                j += 1;
            }
        }
    }
    out.deleted.extend(a[i..].iter().map(|e| e.path.clone()));
    out.added.extend(b[j..].iter().map(|e| e.path.clone()));
    out
}

fn load(cache_dir: &Path, side: Side<'_>, idx: Option<&Index>) -> Result<Manifest> {
    match side {
        Side::Empty => Ok(Manifest::default()),
        Side::Cached(h) => manifest::load_from_cache(cache_dir, h),
        Side::Dir(p) => manifest::hash_dir(p, idx).map(|(m, _)| m),
    }
}

/// Load both sides (in parallel) and diff them. A missing or corrupt directory object is
/// `CacheMissing` / `CacheCorrupt` naming the object.
pub fn diff_sides(
    cache_dir: &Path,
    old: Side<'_>,
    new: Side<'_>,
    state_dir: Option<&Path>,
) -> Result<Diff> {
    crate::hash::ensure_pool();
    let idx = state_dir.map(Index::load);
    let (a, b) = rayon::join(
        || load(cache_dir, old, idx.as_ref()),
        || load(cache_dir, new, idx.as_ref()),
    );
    if let Some(i) = &idx {
        index::save_quietly(i);
    }
    Ok(diff(&a?, &b?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn entry(path: &str, hash_byte: u8, exec: bool) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            hash: format!("{hash_byte:02x}").repeat(32),
            size: 1,
            exec,
            link: None,
        }
    }

    fn strs(v: &[Vec<u8>]) -> Vec<&str> {
        v.iter().map(|p| std::str::from_utf8(p).unwrap()).collect()
    }

    #[test]
    fn merge_pass_finds_added_modified_deleted() {
        let old = Manifest::from_entries(vec![
            entry("a", 1, false),
            entry("b/x", 2, false),
            entry("c", 3, false),
            entry("d", 4, false),
            entry("z", 9, false),
        ]);
        let new = Manifest::from_entries(vec![
            entry("a", 1, false),
            entry("a-b", 5, false),
            entry("b/x", 6, false),
            entry("d", 4, true),
            entry("zz", 7, false),
        ]);
        let d = diff(&old, &new);
        assert_eq!(strs(&d.added), vec!["a-b", "zz"]);
        assert_eq!(strs(&d.modified), vec!["b/x", "d"]);
        assert_eq!(strs(&d.deleted), vec!["c", "z"]);
    }

    #[test]
    fn empty_sides() {
        let m = Manifest::from_entries(vec![entry("a", 1, false), entry("b", 2, false)]);
        let e = Manifest::default();
        assert_eq!(strs(&diff(&e, &m).added), vec!["a", "b"]);
        assert_eq!(strs(&diff(&m, &e).deleted), vec!["a", "b"]);
        assert_eq!(diff(&m, &m), Diff::default());
    }

    #[test]
    fn link_target_change_is_a_modification() {
        let old = Manifest::from_entries(vec![Entry::for_link(b"l".to_vec(), b"x".to_vec())]);
        let new = Manifest::from_entries(vec![Entry::for_link(b"l".to_vec(), b"y".to_vec())]);
        assert_eq!(strs(&diff(&old, &new).modified), vec!["l"]);
    }

    #[test]
    fn cached_against_workspace_directory() {
        let cache = tempfile::tempdir().unwrap();
        let ws = tempfile::tempdir().unwrap();
        let dir = ws.path().join("out");
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("keep"), b"same").unwrap();
        fs::write(dir.join("sub/edit"), b"v1").unwrap();
        fs::write(dir.join("gone"), b"bye").unwrap();
        let (m, info) = manifest::hash_dir(&dir, None).unwrap();
        let obj = manifest::object_path(cache.path(), &info.hash);
        fs::create_dir_all(obj.parent().unwrap()).unwrap();
        fs::write(&obj, m.to_bytes()).unwrap();

        fs::write(dir.join("sub/edit"), b"v2").unwrap();
        fs::remove_file(dir.join("gone")).unwrap();
        fs::write(dir.join("new"), b"hi").unwrap();
        let d = diff_sides(
            cache.path(),
            Side::Cached(&info.hash),
            Side::Dir(&dir),
            None,
        )
        .unwrap();
        assert_eq!(strs(&d.added), vec!["new"]);
        assert_eq!(strs(&d.modified), vec!["sub/edit"]);
        assert_eq!(strs(&d.deleted), vec!["gone"]);

        let missing = "ab".repeat(32);
        let e = diff_sides(cache.path(), Side::Cached(&missing), Side::Empty, None).unwrap_err();
        assert!(matches!(e, crate::error::Error::CacheMissing { .. }), "{e}");
    }
}
