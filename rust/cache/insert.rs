//! Insert a workspace file or directory into the cache (docs/formats.md, "Cache objects and link
//! modes", Insert).
//!
//! Per file: the source is linked / cloned / copied into a temp object in `files/` and the
//! bytes are hashed in that same pass (hardlink and reflink: the temp is read once; copy: hashed
//! between read and write). The source's stat before and after must agree, else
//! `SourceChanged` and the temp is removed. The temp is then renamed into place with
//! `RENAME_NOREPLACE`: an existing object is never rewritten (unless its size is wrong, i.e. it
//! was truncated by a crash, or its bytes no longer hash to its name: then it is replaced).
//! Once the hardlink mode is decided, files are linked straight to their object name instead
//! (`insert_hardlinked`). Kill points: `object_write` (temp complete), `object_rename` (just
//! before the rename), `manifest_write` (directory object).
//!
//! Durability: file objects are not fsynced one by one (100,000 fsyncs would dominate a tree
//! insert); one `syncfs` on the cache filesystem runs before a directory's manifest object is
//! written, so a lock written after `insert` never names an object that is not on disk. A
//! single-file insert fsyncs its object and the shard directory instead.

mod temp;

use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::atomic::{self, kill_point};
use crate::cache::link::{self, LinkMode, Linker, OBJECT_MODE};
use crate::cache::Cache;
use crate::error::{Error, IoContext, Result};
use crate::hash;
use crate::index::{self, Index};
use crate::manifest::{self, Entry, Kind, Manifest};
use crate::paths::PathInfo;
use crate::stat::{self, Ctime};

use temp::{hash_unchanged, TempGuard};

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

fn changed(path: &Path) -> Error {
    Error::SourceChanged {
        path: path.into(),
        msg: "size, mtime, ctime or inode changed while it was being cached".into(),
    }
}

/// Whether an existing object's bytes still hash to its name (one read of the object).
pub(crate) fn object_intact(obj: &Path, h: &str) -> bool {
    let Ok(mut f) = File::open(obj) else {
        return false;
    };
    let len = f.metadata().map_or(0, |m| m.len());
    hash::hash_open_file(&mut f, len).is_ok_and(|got| got.to_hex().as_str() == h)
}

/// One insert operation: the cache, the link-mode decision and the stat index.
struct Inserter<'a> {
    cache: &'a Cache,
    linker: &'a Linker,
    idx: Option<&'a Index>,
}

impl Inserter<'_> {
    /// Insert one regular file whose lstat (from the walk) is `seen`; returns its manifest entry
    /// fields (hash, size, exec).
    fn insert_file(&self, src: &Path, seen: &Metadata) -> Result<(String, u64, bool)> {
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
        let recorded = index::stamp(self.idx);
        let t = self.make_temp(src, seen, exec)?;
        let mut guard = TempGuard(Some(t.path.clone()));
        let h = hash::hex(&t.hash);
        kill_point("object_write");
        let obj = self.cache.object_path(&h)?;
        let placed = place_temp(self.cache, &t.path, &h, t.size, "object_rename")?;
        if placed {
            guard.0 = None;
        }
        let ws_meta = if t.mode == LinkMode::Hardlink {
            let om = fs::symlink_metadata(&obj).at(&obj)?;
            if placed || stat::same_inode(&om, &t.before) {
                // The workspace path and the object are one inode; its ctime moved (link, chmod,
                // rename), so record the stat it has now, after the final chmod: one entry
                // serves both `hash_path` and restores (`Index::lookup_object`).
                om
            } else {
                relink_workspace(src, &obj)?
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
        let recorded = index::stamp(self.idx);
        let (hash, before) = if let Some(h) = known {
            (
                blake3::Hash::from_hex(h).map_err(|_| changed(src))?,
                seen.clone(),
            )
        } else {
            let mut f = File::open(src).at(src)?;
            hash_unchanged(&mut f, seen).map_err(|e| e.into_error(src))?
        };
        let hex = hash::hex(&hash);
        let obj = self.cache.object_path(&hex)?;
        self.cache.ensure_shard(&hex)?;
        kill_point("object_rename");
        let ws_meta = match link::hardlink(src, &obj) {
            Ok(()) => {
                let om = fs::symlink_metadata(&obj).at(&obj)?;
                // link() moves only the ctime; anything else means `src` was replaced or
                // written after it was hashed: give the name back.
                if !stat::unchanged(&before, &om, Ctime::Ignore) {
                    let _ = fs::remove_file(&obj);
                    return Err(changed(src));
                }
                if om.permissions().mode() & 0o7777 == OBJECT_MODE {
                    om
                } else {
                    // The workspace file is the object: it becomes read-only too (expected).
                    fs::set_permissions(&obj, fs::Permissions::from_mode(OBJECT_MODE)).at(&obj)?;
                    fs::symlink_metadata(&obj).at(&obj)?
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let om = fs::symlink_metadata(&obj).at(&obj)?;
                if stat::same_inode(&om, &before) {
                    om
                } else if om.is_file()
                    && om.len() == before.len()
                    && (self.idx.and_then(|i| i.lookup_object(&om)).as_deref() == Some(&hex)
                        || object_intact(&obj, &hex))
                {
                    relink_workspace(src, &obj)?
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
        if stat::same_inode(&om, seen) || exec || self.linker.first() != LinkMode::Hardlink {
            return Ok(true);
        }
        let vouched = self.idx.and_then(|i| i.lookup_object(&om)).as_deref() == Some(h);
        if !vouched && !object_intact(&obj, h) {
            // Never point the workspace at a corrupt object: insert normally (replaces it).
            return Ok(false);
        }
        // Workspace holds a separate copy: point it at the object (hardlink mode only; a
        // filesystem that cannot hard-link falls back for the whole operation as usual).
        let recorded = index::stamp(self.idx);
        let m = self.linker.run(|mode| match mode {
            LinkMode::Hardlink => relink_workspace(src, &obj),
            _ => Ok(seen.clone()),
        })?;
        if let Some(i) = self.idx {
            let hh = blake3::Hash::from_hex(h).expect("validated hex");
            i.record(&m, recorded, &hh);
        }
        Ok(true)
    }
}

/// Replace the workspace file `src` by a hard link to `obj`; its stat afterwards.
fn relink_workspace(src: &Path, obj: &Path) -> Result<Metadata> {
    link::relink(obj, src).at(src)?;
    fs::symlink_metadata(src).at(src)
}

/// Move the complete temp object `tmp` (in `files/`, hashing to `h`, `size` bytes) to its
/// object name; kill point `kp` just before the rename. An existing object is kept when intact
/// (true is returned only when `tmp` was moved: otherwise the caller removes it); one of the
/// wrong size (truncated by a crash before syncfs) or whose bytes changed (a hard-linked output
/// edited in place) is replaced, since it names other bytes. Used by insert and by a remote
/// fetch (`remote::transfer`), which hash what they write before placing it.
pub fn place_temp(cache: &Cache, tmp: &Path, h: &str, size: u64, kp: &str) -> Result<bool> {
    let obj = cache.object_path(h)?;
    cache.ensure_shard(h)?;
    kill_point(kp);
    match link::rename_noreplace(tmp, &obj) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let ok = fs::symlink_metadata(&obj).is_ok_and(|m| m.is_file() && m.len() == size)
                && object_intact(&obj, h);
            if !ok {
                fs::rename(tmp, &obj).at(&obj)?;
            }
            Ok(!ok)
        }
        Err(e) => Err(Error::io(obj, e)),
    }
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
    let mut f = link::create_new(&tmp, OBJECT_MODE).at(&tmp)?;
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
        index::save_quietly(i);
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
    ins.cache.sync_fs()?;
    write_object(ins.cache, &h, &bytes, "manifest_write")?;
    Ok(PathInfo {
        hash: h,
        size: m.total_size(),
        nfiles: m.nfiles(),
        is_dir: true,
    })
}

#[cfg(test)]
mod tests;
