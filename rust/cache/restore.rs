//! Materialise a cached file or directory at a destination, all or nothing (docs/formats.md,
//! "Cache objects and link modes", Restore).
//!
//! The new file/tree is built beside the destination under a short temp name
//! (`.pvtmp-<pid>-<n>-<rand>`), then swapped in with `renameat2(RENAME_EXCHANGE)` (kill point
//! `restore_swap` just before), and the old content, now under the temp name, is deleted. A
//! crash leaves the old or the new content at `dest` plus a temp that the next restore into the
//! same directory removes (temps of dead processes). Filesystems without `RENAME_EXCHANGE` get
//! rename-old-away (`.pvold-…`) then rename-new-in.
//!
//! Verification while restoring: no object whose bytes do not hash to its name is restored
//! (`CacheCorrupt` naming the object; temp removed, dest untouched). `copy` hashes every object
//! while copying it. `hardlink` and `reflink` share the bytes without reading them, so an
//! object is read and hashed unless the stat index (one load and one save per restore) vouches
//! for its content: an entry for its (dev, inode) with equal size and mtime, a non-racy mtime
//! and the object's name as hash (`Index::lookup_object`; ctime is not compared because every
//! link/unlink of the object's hard links moves it). An object read and found intact is
//! recorded, so the next restore reads nothing. A write to an object changes its mtime and is
//! caught; a write that resets mtime with utime(2), and silent bit-rot, are left to
//! `pivot verify --cache`. Manifest sizes are checked for every entry.
//!
//! Safety: files are created with `O_CREAT|O_EXCL|O_NOFOLLOW` inside a directory we just created;
//! symlinks of the tree are created last, so nothing is ever written through one. Existing
//! components of the destination's parent that are symlinks must resolve inside the project
//! (the directory holding `.pivot/`, else the cache directory's parent): `UnsafePath` otherwise.
//!
//! `partial` restores some entries of a directory object in place, under the same rules.

pub mod partial;

use std::collections::HashSet;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use crate::atomic::{self, kill_point};
use crate::cache::link::{self, LinkMode, Linker};
use crate::cache::{self, Cache};
use crate::counters;
use crate::error::{Error, IoContext, Result};
use crate::hash;
use crate::index::{self, Index};
use crate::manifest::{self, Manifest};
use crate::stat::{self, Ctime};

/// Restore object `hash` at `dest`; returns the link mode used. With `state_dir`, objects the
/// stat index vouches for are linked without being read, and objects read are recorded (see
/// module doc).
pub fn restore(
    hash: &str,
    is_dir: bool,
    dest: &Path,
    cache_dir: &Path,
    modes: Vec<LinkMode>,
    state_dir: Option<&Path>,
) -> Result<LinkMode> {
    let idx = state_dir.map(Index::load);
    let r = restore_in(hash, is_dir, dest, cache_dir, modes, idx.as_ref());
    if let Some(i) = &idx {
        // Objects verified before a failure stay verified: save either way.
        index::save_quietly(i);
    }
    r
}

fn restore_in(
    hash: &str,
    is_dir: bool,
    dest: &Path,
    cache_dir: &Path,
    modes: Vec<LinkMode>,
    idx: Option<&Index>,
) -> Result<LinkMode> {
    hash::ensure_pool();
    let cache = Cache::new(cache_dir);
    let linker = Linker::new(modes);
    let dest = absolute(dest)?;
    check_dest(&dest, cache_dir)?;
    // Read (and validate) everything needed before touching the workspace.
    let manifest = if is_dir {
        Some(cache.read_manifest(hash)?)
    } else {
        let obj = cache.object_path(hash)?;
        if !fs::symlink_metadata(&obj).is_ok_and(|m| m.is_file()) {
            return Err(Error::CacheMissing {
                path: obj,
                hash: hash.into(),
            });
        }
        None
    };
    let parent = atomic::parent_dir(&dest).to_path_buf();
    fs::create_dir_all(&parent).at(&parent)?;
    // One readdir per restore: cheap next to building the new file or tree.
    cache::clean_stale(&parent);
    let tmp = atomic::temp_path_in(&parent);
    let built = match &manifest {
        Some(m) => build_tree(&cache, &linker, m, &tmp, idx),
        None => materialize(&cache, &linker, idx, hash, None, false, &tmp),
    };
    if let Err(e) = built {
        let _ = remove_any(&tmp);
        return Err(e);
    }
    if let Err(e) = swap(&tmp, &dest, &parent) {
        let _ = remove_any(&tmp);
        return Err(e);
    }
    Ok(linker.first())
}

/// Lexically absolute and normalised (`.`/`..` resolved without following links), so every
/// later step works on the very path that was checked.
fn absolute(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).at(p)?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    if out.parent().is_none() {
        return Err(Error::unsafe_path(
            p,
            "cannot restore onto the filesystem root",
        ));
    }
    Ok(out)
}

/// The project root implied by the cache location (see module doc).
fn project_root(cache_dir: &Path) -> Option<PathBuf> {
    let c = absolute(cache_dir).ok()?;
    let mut cur = c.as_path();
    while let Some(parent) = cur.parent() {
        if cur.file_name().is_some_and(|n| n == ".pivot") {
            return Some(parent.to_path_buf());
        }
        cur = parent;
    }
    c.parent().map(Path::to_path_buf)
}

/// Refuse a destination reached through a symlink that leaves the project.
fn check_dest(dest: &Path, cache_dir: &Path) -> Result<()> {
    let Some(root) = project_root(cache_dir) else {
        return Ok(());
    };
    let Ok(rel) = dest.strip_prefix(&root) else {
        return Ok(());
    };
    let root_real = fs::canonicalize(&root).unwrap_or_else(|_| root.clone());
    let mut cur = root.clone();
    let comps: Vec<_> = rel.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                let resolved = fs::canonicalize(&cur).at(&cur)?;
                if !resolved.starts_with(&root_real) {
                    return Err(Error::unsafe_path(
                        dest,
                        format!(
                            "{} is a symlink to {} outside the project",
                            cur.display(),
                            resolved.display()
                        ),
                    ));
                }
            }
            Ok(_) => {}
            Err(_) => break, // missing: created below with mkdir
        }
    }
    Ok(())
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => cache::remove_tree(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Put `tmp` at `dest`, then delete what was there.
fn swap(tmp: &Path, dest: &Path, parent: &Path) -> Result<()> {
    let exists = fs::symlink_metadata(dest).is_ok();
    kill_point("restore_swap");
    if !exists {
        match link::rename_noreplace(tmp, dest) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {} // appeared meanwhile
            Err(e) => return Err(Error::io(dest, e)),
        }
    }
    match link::rename_exchange(tmp, dest) {
        Ok(()) => {
            // `tmp` now names the old content.
            remove_any(tmp).at(tmp)
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
            let old = parent.join(format!(
                "{}{}",
                cache::OLD_PREFIX,
                &tmp.file_name().unwrap().to_string_lossy()[atomic::TEMP_PREFIX.len()..]
            ));
            fs::rename(dest, &old).at(dest)?;
            fs::rename(tmp, dest).at(dest)?;
            remove_any(&old).at(&old)
        }
        Err(e) => Err(Error::io(dest, e)),
    }
}

fn build_tree(
    cache: &Cache,
    linker: &Linker,
    m: &Manifest,
    tmp: &Path,
    idx: Option<&Index>,
) -> Result<()> {
    fs::create_dir(tmp).at(tmp)?;
    // Directories first (sorted, so parents come before children), in a tree we own.
    let mut dirs: Vec<&[u8]> = Vec::new();
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for e in &m.entries {
        let p = &e.path[..];
        let mut pos = 0;
        while let Some(k) = p[pos..].iter().position(|&b| b == b'/') {
            let d = &p[..pos + k];
            if seen.insert(d) {
                dirs.push(d);
            }
            pos += k + 1;
        }
    }
    dirs.sort_unstable();
    for d in dirs {
        let p = tmp.join(manifest::rel_path(d));
        fs::create_dir(&p).at(&p)?;
    }
    m.entries
        .par_iter()
        .filter(|e| e.link.is_none())
        .try_for_each(|e| {
            let dst = tmp.join(manifest::rel_path(&e.path));
            materialize(cache, linker, idx, &e.hash, Some(e.size), e.exec, &dst)
        })?;
    // Links last: no file is ever created below a symlink.
    for e in &m.entries {
        if let Some(t) = &e.link {
            let dst = tmp.join(manifest::rel_path(&e.path));
            std::os::unix::fs::symlink(manifest::rel_path(t), &dst).at(&dst)?;
        }
    }
    Ok(())
}

/// Create `dst` (new) from object `hash` with the operation's mode (`Linker::link_file`: exec
/// files are copied, objects are never executable).
fn materialize(
    cache: &Cache,
    linker: &Linker,
    idx: Option<&Index>,
    hash: &str,
    size: Option<u64>,
    exec: bool,
    dst: &Path,
) -> Result<()> {
    let obj = cache.object_path(hash)?;
    linker.link_file(exec, dst, |mode| match mode {
        LinkMode::Hardlink => {
            link::hardlink(&obj, dst).map_err(|e| obj_err(&obj, hash, e))?;
            check_linked(&obj, hash, size, dst, idx)
        }
        LinkMode::Reflink => reflink(&obj, hash, size, exec, dst, idx),
        LinkMode::Copy => copy_verified(&obj, hash, size, exec, dst, idx),
    })
}

fn obj_err(obj: &Path, hash: &str, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::CacheMissing {
            path: obj.into(),
            hash: hash.into(),
        }
    } else {
        Error::io(obj, e)
    }
}

fn corrupt(obj: &Path, hash: &str) -> Error {
    Error::CacheCorrupt {
        path: obj.into(),
        hash: hash.into(),
    }
}

/// Whether the index vouches for the content of the object whose stat is `m` (module doc).
fn trusted(idx: Option<&Index>, m: &Metadata, hash: &str) -> bool {
    let hit = idx
        .and_then(|i| i.lookup_object(m))
        .is_some_and(|h| h == hash);
    if hit {
        counters::count_hits(1);
    }
    hit
}

/// Read `file` (the object, or a clone of it) and check that it hashes to `hash`; returns the
/// stat taken just before the read and the index stamp taken before that stat. The size and
/// mtime must not move during the read (bytes changing under it: someone is writing to an
/// object, which is corruption too); the ctime may (`Ctime::Ignore`: a concurrent restore of the
/// same object links it).
fn read_verified(
    obj: &Path,
    hash: &str,
    file: &Path,
    idx: Option<&Index>,
) -> Result<(Metadata, i64, blake3::Hash)> {
    let recorded = index::stamp(idx);
    let mut f = File::open(file).at(file)?;
    let before = f.metadata().at(file)?;
    let r = hash::hash_checked(&mut f, &before, Ctime::Ignore).at(obj)?;
    counters::count_read(before.len());
    match r {
        Some((h, _)) if h.to_hex().as_str() == hash => Ok((before, recorded, h)),
        _ => Err(corrupt(obj, hash)),
    }
}

/// A hard link shares the object's inode: trusted by the index, or read once to prove the bytes
/// still hash to the object's name, then recorded (a corrupt object is never restored).
fn check_linked(
    obj: &Path,
    hash: &str,
    size: Option<u64>,
    dst: &Path,
    idx: Option<&Index>,
) -> Result<()> {
    // Stat after linking: a write before this moved mtime; one after it is a workspace edit.
    let recorded = index::stamp(idx);
    let seen = fs::symlink_metadata(dst).at(dst)?;
    if size.is_some_and(|s| s != seen.len()) {
        return Err(corrupt(obj, hash));
    }
    if trusted(idx, &seen, hash) {
        // The link moved the shared inode's ctime: record the stat it has now, so that the
        // next `status` trusts the restored file instead of reading it.
        if let (Some(i), Ok(h)) = (idx, blake3::Hash::from_hex(hash)) {
            i.record(&seen, recorded, &h);
        }
        return Ok(());
    }
    let (m, recorded, h) = read_verified(obj, hash, dst, idx)?;
    if let Some(i) = idx {
        i.record(&m, recorded, &h);
    }
    Ok(())
}

fn reflink(
    obj: &Path,
    hash: &str,
    size: Option<u64>,
    exec: bool,
    dst: &Path,
    idx: Option<&Index>,
) -> Result<()> {
    let s = link::open_read(obj).map_err(|e| obj_err(obj, hash, e))?;
    let recorded = index::stamp(idx);
    let m1 = s.metadata().at(obj)?;
    let d = link::clone_new(&s, dst, link::workspace_mode(exec)).at(dst)?;
    set_mode(&d, exec, dst)?;
    drop(d);
    // The clone holds the object's bytes as of the clone: stable over [m1, m2] and vouched for
    // at m2 means the clone is good.
    let m2 = s.metadata().at(obj)?;
    if size.is_some_and(|n| n != m2.len()) {
        return Err(corrupt(obj, hash));
    }
    let stable = stat::unchanged(&m1, &m2, Ctime::Ignore);
    if stable && trusted(idx, &m2, hash) {
        return Ok(());
    }
    let (cm, _, h) = read_verified(obj, hash, dst, idx)?;
    if size.is_some_and(|n| n != cm.len()) {
        return Err(corrupt(obj, hash));
    }
    if let (Some(i), true) = (idx, stable) {
        i.record(&m1, recorded, &h);
    }
    Ok(())
}

/// The clone or copy gets the manifest's mode whatever the umask.
fn set_mode(f: &File, exec: bool, dst: &Path) -> Result<()> {
    f.set_permissions(fs::Permissions::from_mode(link::workspace_mode(exec)))
        .at(dst)
}

/// Copy an object, hashing it on the way (copying reads the bytes anyway, so this always
/// verifies); a mismatch is `CacheCorrupt` naming the object. An intact object is recorded in the
/// index unless already vouched for, so a later hardlink restore need not read it.
fn copy_verified(
    obj: &Path,
    hash: &str,
    size: Option<u64>,
    exec: bool,
    dst: &Path,
    idx: Option<&Index>,
) -> Result<()> {
    let mut s = link::open_read(obj).map_err(|e| obj_err(obj, hash, e))?;
    let recorded = index::stamp(idx);
    let before = s.metadata().at(obj)?;
    if size.is_some_and(|n| n != before.len()) {
        return Err(corrupt(obj, hash));
    }
    let mut d = link::create_new(dst, link::workspace_mode(exec)).at(dst)?;
    let h = match link::copy_checked(&mut s, &before, &mut d, Ctime::Ignore).at(obj)? {
        Some(h) if h.to_hex().as_str() == hash => h,
        _ => return Err(corrupt(obj, hash)),
    };
    set_mode(&d, exec, dst)?;
    if let Some(i) = idx {
        if i.lookup_object(&before).is_none_or(|k| k != hash) {
            i.record(&before, recorded, &h);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
