//! The content-addressed cache: `<cache_dir>/files/<2 hex>/<62 hex>`, read-only objects
//! (docs/formats.md, "Cache objects and link modes").
//!
//! This module holds what every cache operation shares: the `Cache` type (object paths, shard
//! directories, presence of an object), reading a directory object, and the removal of temps
//! left by dead processes. The operations sit above it and never call each other:
//! - `insert`: put a workspace file or directory into the cache;
//! - `restore`: materialise an object at a workspace path;
//! - `verify`: re-hash objects;
//! - `link`: the one home of the link modes (reflink, hardlink, copy-with-hash), the per-operation
//!   fallback and the renames, used by both insert and restore.

pub mod gc;
pub mod insert;
pub mod link;
pub mod restore;
pub mod verify;

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::atomic;
use crate::error::{Error, IoContext, Result};
use crate::hash;
use crate::manifest::Manifest;

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
        Ok(self.files.join(&hash[..2]).join(&hash[2..]))
    }

    /// Create `files/<2 hex>/` once per operation.
    pub(crate) fn ensure_shard(&self, hash: &str) -> Result<()> {
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

    /// Flush the cache's filesystem once: objects written without a per-file fsync (an
    /// insert's or a fetch's) are durable together before anything names them.
    pub fn sync_fs(&self) -> Result<()> {
        let f = fs::File::open(&self.files).at(&self.files)?;
        // SAFETY: valid open fd.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(Error::io(&self.files, io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Make sure `files/` exists and remove temps left by dead processes.
    pub fn prepare(&self) -> Result<()> {
        fs::create_dir_all(&self.files).at(&self.files)?;
        clean_stale(&self.files);
        Ok(())
    }

    /// Read the directory object `dir_hash` and parse it: it must exist (`CacheMissing`), its
    /// bytes must hash to its name (`CacheCorrupt`) and be a valid manifest (`Manifest::parse`).
    pub fn read_manifest(&self, dir_hash: &str) -> Result<Manifest> {
        let (p, data) = self.read_verified(dir_hash)?;
        Manifest::parse(&data, &p)
    }

    /// The raw names of the files of directory object `dir_hash` (`manifest::file_names`),
    /// with `read_manifest`'s existence and hash checks: what a push reads of a big tree.
    pub fn manifest_file_names(&self, dir_hash: &str) -> Result<Vec<[u8; 32]>> {
        let (p, data) = self.read_verified(dir_hash)?;
        crate::manifest::file_names(&data, &p)
    }

    fn read_verified(&self, dir_hash: &str) -> Result<(PathBuf, Vec<u8>)> {
        let p = self.object_path(dir_hash)?;
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::CacheMissing {
                    path: p,
                    hash: dir_hash.into(),
                })
            }
            Err(e) => return Err(Error::io(p, e)),
        };
        if hash::hash_bytes(&data) != dir_hash {
            return Err(Error::CacheCorrupt {
                path: p,
                hash: dir_hash.into(),
            });
        }
        Ok((p, data))
    }

    /// Every object name under `files/` (temps and stray names skipped).
    pub fn list_objects(&self) -> Result<Vec<String>> {
        let files = &self.files;
        let rd = match fs::read_dir(files) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(files, e)),
        };
        let mut shards = Vec::new();
        for ent in rd {
            let ent = ent.at(files)?;
            let name = ent.file_name();
            let Some(n) = name.to_str() else { continue };
            if n.len() == 2 && ent.file_type().at(&ent.path())?.is_dir() {
                shards.push((n.to_string(), ent.path()));
            }
        }
        let lists: Vec<Vec<String>> = shards
            .par_iter()
            .map(|(prefix, dir)| {
                let mut v = Vec::new();
                for ent in fs::read_dir(dir).at(dir)? {
                    let ent = ent.at(dir)?;
                    if let Some(n) = ent.file_name().to_str() {
                        let h = format!("{prefix}{n}");
                        if hash::is_hex64(&h) {
                            v.push(h);
                        }
                    }
                }
                Ok(v)
            })
            .collect::<Result<_>>()?;
        let mut all: Vec<String> = lists.into_iter().flatten().collect();
        all.sort_unstable();
        Ok(all)
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
            Err(
                Error::CacheMissing { .. }
                | Error::CacheCorrupt { .. }
                | Error::Manifest { .. }
                | Error::UnsafePath { .. },
            ) => return Ok(false),
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

/// Prefix of a tree moved out of the way during a restore swap.
pub const OLD_PREFIX: &str = ".pvold-";

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

fn process_alive(pid: u32) -> bool {
    // A pid that does not fit pid_t names no process.
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence/permission.
    let r = unsafe { libc::kill(pid, 0) };
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(c.read_manifest("xyz").is_err());
    }
}
