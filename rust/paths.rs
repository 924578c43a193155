//! `hash_path` / `hash_paths`: the `HashInfo` of workspace files and directories, through the
//! stat index when a state directory is given (loaded once and saved once per call). Sits above
//! both `index` (files) and `manifest` (directories).

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, IoContext, Result};
use crate::hash;
use crate::index::{self, Index};
use crate::manifest;

/// What `hash_path` returns (Python `HashInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    pub hash: String,
    pub size: u64,
    pub nfiles: u64,
    pub is_dir: bool,
}

fn hash_one(path: &Path, idx: Option<&Index>) -> Result<PathInfo> {
    let meta = fs::metadata(path).at(path)?; // the top-level path may be a symlink: follow it
    if meta.is_dir() {
        let d = manifest::hash_dir_info(path, idx)?;
        Ok(PathInfo {
            hash: d.hash,
            size: d.size,
            nfiles: d.nfiles,
            is_dir: true,
        })
    } else if meta.is_file() {
        let (h, m) = index::hash_file_with(path, &meta, idx)?;
        Ok(PathInfo {
            hash: h,
            size: m.len(),
            nfiles: 1,
            is_dir: false,
        })
    } else {
        Err(Error::manifest(path, "not a regular file or directory"))
    }
}

/// Hash a file or directory; with `state_dir`, through the stat index (loaded and saved here).
pub fn hash_path(path: &Path, state_dir: Option<&Path>) -> Result<PathInfo> {
    let idx = state_dir.map(Index::load);
    let r = hash_one(path, idx.as_ref())?;
    if let Some(i) = &idx {
        index::save_quietly(i);
    }
    Ok(r)
}

/// `hash_path` for many paths in parallel, sharing one index load and one save.
pub fn hash_paths(paths: &[PathBuf], state_dir: Option<&Path>) -> Result<Vec<PathInfo>> {
    hash::ensure_pool();
    let idx = state_dir.map(Index::load);
    let r: Result<Vec<PathInfo>> = paths
        .par_iter()
        .map(|p| hash_one(p, idx.as_ref()))
        .collect();
    if let Some(i) = &idx {
        index::save_quietly(i);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_path_dir_matches_manifest() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("t/s")).unwrap();
        fs::write(d.path().join("t/s/a"), b"1").unwrap();
        fs::write(d.path().join("t/b"), b"22").unwrap();
        let state = d.path().join("state");
        let a = hash_path(&d.path().join("t"), Some(&state)).unwrap();
        let b = hash_path(&d.path().join("t"), None).unwrap();
        assert_eq!(a, b);
        assert!(a.is_dir && a.nfiles == 2 && a.size == 3);
        let many = hash_paths(&[d.path().join("t"), d.path().join("t/b")], Some(&state)).unwrap();
        assert_eq!(many[0], a);
        assert_eq!(many[1].hash, hash::hash_bytes(b"22"));
    }

    #[test]
    fn not_a_file_or_directory_is_an_error_naming_it() {
        let e = hash_path(Path::new("/dev/null"), None).unwrap_err();
        assert!(e.to_string().contains("/dev/null"), "{e}");
    }
}
