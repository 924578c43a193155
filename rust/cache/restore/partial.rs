//! Restore some entries of a cached directory into an existing directory, leaving the others
//! alone (`pivot checkout out/dir/file`, `checkout --only-missing`).
//!
//! Unlike a full restore (the parent module: build beside, swap the whole tree), each selected
//! entry is materialised beside its own destination under a temp name and renamed into place,
//! so a crash leaves the old or the new file plus a temp, and files that were not selected keep
//! their inode and mtime. The same link modes (one decision per operation), size checks,
//! object verification and stat-index rules as a full restore apply (`materialize`).
//!
//! Selection: `Select::Missing` takes every entry whose path does not exist; `Select::Paths`
//! takes the entries equal to or below the given relative paths. An existing selected entry
//! whose content equals the manifest's is left alone (`unchanged`); one that differs is replaced
//! only with `force` or when its current content is itself in the cache (nothing lost), else it
//! is `refused`. Parent directories are created as needed; an existing parent that is a symlink
//! or not a directory refuses the entry (nothing is ever written through a link).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{absolute, check_dest, materialize, remove_any};
use crate::atomic;
use crate::cache::link::{self, LinkMode, Linker};
use crate::cache::Cache;
use crate::error::{Error, IoContext, Result};
use crate::hash;
use crate::index::{self, Index};
use crate::manifest::{self, Entry};

/// Which entries of the manifest to restore.
pub enum Select {
    /// Every entry whose destination path does not exist.
    Missing,
    /// Entries equal to or below these relative POSIX paths.
    Paths(Vec<String>),
}

/// What happened to the selected entries (paths relative to the destination directory).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Partial {
    pub restored: Vec<String>,
    pub unchanged: u64,
    /// (path, why) for entries left alone because replacing them could lose data.
    pub refused: Vec<(String, String)>,
    /// Requested paths that name no entry of the manifest.
    pub not_found: Vec<String>,
}

enum Plan {
    Restore { replace: bool },
    Unchanged,
    Refuse(String),
}

fn text(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn select<'m>(entries: &'m [Entry], sel: &Select, dest: &Path) -> (Vec<&'m Entry>, Vec<String>) {
    match sel {
        Select::Missing => {
            let picked = entries
                .par_iter()
                .filter(|e| {
                    let p = dest.join(manifest::rel_path(&e.path));
                    matches!(fs::symlink_metadata(p), Err(ref err) if err.kind() == io::ErrorKind::NotFound)
                })
                .collect();
            (picked, Vec::new())
        }
        Select::Paths(paths) => {
            let mut picked: BTreeSet<usize> = BTreeSet::new();
            let mut not_found = Vec::new();
            for want in paths {
                let w = want.trim_end_matches('/').as_bytes();
                let mut any = false;
                for (i, e) in entries.iter().enumerate() {
                    let p = &e.path[..];
                    if p == w || (p.len() > w.len() && p.starts_with(w) && p[w.len()] == b'/') {
                        picked.insert(i);
                        any = true;
                    }
                }
                if !any {
                    not_found.push(want.clone());
                }
            }
            (picked.into_iter().map(|i| &entries[i]).collect(), not_found)
        }
    }
}

/// Whether every existing ancestor of `rel` below `dest` is a real directory.
fn parents_ok(dest: &Path, rel: &[u8]) -> std::result::Result<(), String> {
    let mut cur = dest.to_path_buf();
    let comps: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
    for c in &comps[..comps.len() - 1] {
        cur.push(manifest::rel_path(c));
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!("{} is a symlink", cur.display()))
            }
            Ok(_) => return Err(format!("{} is not a directory", cur.display())),
            Err(_) => return Ok(()), // missing from here down: created before linking
        }
    }
    Ok(())
}

fn plan_one(
    cache: &Cache,
    idx: Option<&Index>,
    dest: &Path,
    e: &Entry,
    force: bool,
) -> Result<Plan> {
    if let Err(why) = parents_ok(dest, &e.path) {
        return Ok(Plan::Refuse(why));
    }
    let p = dest.join(manifest::rel_path(&e.path));
    let m = match fs::symlink_metadata(&p) {
        Ok(m) => m,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Ok(Plan::Restore { replace: false })
        }
        Err(err) => return Err(Error::io(&p, err)),
    };
    let same = match &e.link {
        Some(target) => {
            m.file_type().is_symlink()
                && fs::read_link(&p).at(&p)?.as_os_str().as_encoded_bytes() == &target[..]
        }
        None if m.is_file() => m.len() == e.size && index::hash_file_with(&p, &m, idx)?.0 == e.hash,
        None => false,
    };
    if same {
        // A file's exec bit is part of the entry: a mode-only difference is restored.
        if e.link.is_some() || manifest::is_exec(&m) == e.exec {
            return Ok(Plan::Unchanged);
        }
        return Ok(Plan::Restore { replace: true });
    }
    if force {
        return Ok(Plan::Restore { replace: true });
    }
    if m.is_file() {
        let (h, _) = index::hash_file_with(&p, &m, idx)?;
        if cache.contains(&h, false)? {
            return Ok(Plan::Restore { replace: true }); // its content is recoverable
        }
    }
    Ok(Plan::Refuse(
        "modified and not in the cache; use --force to overwrite".into(),
    ))
}

/// Materialise `e` beside its destination below `dir`, then rename it into place.
fn place(
    cache: &Cache,
    linker: &Linker,
    idx: Option<&Index>,
    dir: &Path,
    e: &Entry,
    replace: bool,
) -> Result<()> {
    let dst = dir.join(manifest::rel_path(&e.path));
    let parent = atomic::parent_dir(&dst).to_path_buf();
    let tmp = atomic::temp_path_in(&parent);
    let made = match &e.link {
        Some(t) => std::os::unix::fs::symlink(manifest::rel_path(t), &tmp).at(&tmp),
        None => materialize(cache, linker, idx, &e.hash, Some(e.size), e.exec, &tmp),
    };
    made?;
    let r = if replace {
        // rename(2) replaces a file or link atomically; a directory in the way must go first.
        if fs::symlink_metadata(&dst).is_ok_and(|m| m.is_dir()) {
            remove_any(&dst).at(&dst)?;
        }
        fs::rename(&tmp, &dst).at(&dst)
    } else {
        link::rename_noreplace(&tmp, &dst).at(&dst)
    };
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

/// Restore the entries of directory `dir_hash` chosen by `sel` into `dest` (see module doc).
pub fn restore_partial(
    dir_hash: &str,
    dest: &Path,
    cache_dir: &Path,
    modes: Vec<LinkMode>,
    state_dir: Option<&Path>,
    sel: &Select,
    force: bool,
) -> Result<Partial> {
    let idx = state_dir.map(Index::load);
    let r = partial_in(dir_hash, dest, cache_dir, modes, idx.as_ref(), sel, force);
    if let Some(i) = &idx {
        index::save_quietly(i);
    }
    r
}

fn partial_in(
    dir_hash: &str,
    dest: &Path,
    cache_dir: &Path,
    modes: Vec<LinkMode>,
    idx: Option<&Index>,
    sel: &Select,
    force: bool,
) -> Result<Partial> {
    hash::ensure_pool();
    let cache = Cache::new(cache_dir);
    let linker = Linker::new(modes);
    let dest: PathBuf = absolute(dest)?;
    check_dest(&dest.join("x"), cache_dir)?;
    let manifest = cache.read_manifest(dir_hash)?;
    match fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Error::unsafe_path(&dest, "not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir_all(&dest).at(&dest)?,
        Err(e) => return Err(Error::io(&dest, e)),
    }
    let (picked, not_found) = select(&manifest.entries, sel, &dest);
    let plans: Vec<Plan> = picked
        .par_iter()
        .map(|e| plan_one(&cache, idx, &dest, e, force))
        .collect::<Result<_>>()?;
    let mut out = Partial {
        not_found,
        ..Partial::default()
    };
    let mut todo: Vec<(&Entry, bool)> = Vec::new();
    for (e, plan) in picked.iter().zip(plans) {
        match plan {
            Plan::Restore { replace } => todo.push((e, replace)),
            Plan::Unchanged => out.unchanged += 1,
            Plan::Refuse(why) => out.refused.push((text(&e.path), why)),
        }
    }
    // Parent directories first, in sorted order (parents before children).
    let dirs: BTreeSet<PathBuf> = todo
        .iter()
        .filter_map(|(e, _)| manifest::rel_path(&e.path).parent().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    for d in dirs {
        let p = dest.join(&d);
        fs::create_dir_all(&p).at(&p)?;
    }
    // Symlinks last, so no file is created below a link made in this pass.
    let (files, links): (Vec<_>, Vec<_>) = todo.into_iter().partition(|(e, _)| e.link.is_none());
    files
        .par_iter()
        .try_for_each(|(e, replace)| place(&cache, &linker, idx, &dest, e, *replace))?;
    for (e, replace) in &links {
        place(&cache, &linker, idx, &dest, e, *replace)?;
    }
    out.restored = files
        .iter()
        .chain(links.iter())
        .map(|(e, _)| text(&e.path))
        .collect();
    out.restored.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::insert::insert;
    use std::os::unix::fs::MetadataExt;

    fn modes(m: &[&str]) -> Vec<LinkMode> {
        link::parse_modes(m).unwrap()
    }

    fn setup(d: &Path) -> (PathBuf, PathBuf, String) {
        let out = d.join("proj/out");
        fs::create_dir_all(out.join("sub/deep")).unwrap();
        for i in 0..50 {
            fs::write(out.join(format!("f{i:02}")), format!("file {i}")).unwrap();
        }
        fs::write(out.join("sub/a"), b"A").unwrap();
        fs::write(out.join("sub/deep/b"), b"B").unwrap();
        std::os::unix::fs::symlink("sub/a", out.join("lnk")).unwrap();
        let cache = d.join("proj/.pivot/cache");
        let info = insert(&out, &cache, None, modes(&["copy"])).unwrap();
        (out, cache, info.hash)
    }

    #[test]
    fn only_missing_restores_missing_and_leaves_the_rest() {
        for m in ["copy", "hardlink", "reflink"] {
            let d = tempfile::tempdir().unwrap();
            let (out, cache, h) = setup(d.path());
            let keep = fs::metadata(out.join("f07")).unwrap();
            fs::remove_file(out.join("f03")).unwrap();
            fs::remove_file(out.join("lnk")).unwrap();
            fs::remove_dir_all(out.join("sub")).unwrap();
            let r = restore_partial(
                &h,
                &out,
                &cache,
                modes(&[m, "copy"]),
                None,
                &Select::Missing,
                false,
            )
            .unwrap();
            assert_eq!(r.restored, ["f03", "lnk", "sub/a", "sub/deep/b"], "{m}");
            assert_eq!(r.unchanged, 0);
            assert_eq!(fs::read(out.join("sub/deep/b")).unwrap(), b"B");
            assert_eq!(fs::read_link(out.join("lnk")).unwrap(), Path::new("sub/a"));
            let after = fs::metadata(out.join("f07")).unwrap();
            assert_eq!(
                (keep.ino(), keep.mtime_nsec()),
                (after.ino(), after.mtime_nsec())
            );
            let temps = fs::read_dir(&out)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(".pvtmp"))
                .count();
            assert_eq!(temps, 0);
        }
    }

    #[test]
    fn paths_refuse_modified_unless_force() {
        let d = tempfile::tempdir().unwrap();
        let (out, cache, h) = setup(d.path());
        fs::write(out.join("sub/a"), b"edited").unwrap();
        fs::remove_file(out.join("sub/deep/b")).unwrap();
        let sel = Select::Paths(vec!["sub".into(), "nope".into(), "f01".into()]);
        let r = restore_partial(&h, &out, &cache, modes(&["copy"]), None, &sel, false).unwrap();
        assert_eq!(r.restored, ["sub/deep/b"]);
        assert_eq!(r.unchanged, 1); // f01
        assert_eq!(r.refused.len(), 1);
        assert_eq!(r.refused[0].0, "sub/a");
        assert_eq!(r.not_found, ["nope"]);
        assert_eq!(fs::read(out.join("sub/a")).unwrap(), b"edited");
        let r = restore_partial(&h, &out, &cache, modes(&["copy"]), None, &sel, true).unwrap();
        assert_eq!(r.restored, ["sub/a"]);
        assert_eq!(fs::read(out.join("sub/a")).unwrap(), b"A");
    }

    #[test]
    fn refuses_to_write_through_a_symlinked_parent() {
        let d = tempfile::tempdir().unwrap();
        let (out, cache, h) = setup(d.path());
        let elsewhere = d.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::remove_dir_all(out.join("sub")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join("sub")).unwrap();
        let sel = Select::Paths(vec!["sub/a".into()]);
        let r = restore_partial(&h, &out, &cache, modes(&["copy"]), None, &sel, true).unwrap();
        assert!(r.restored.is_empty());
        assert_eq!(r.refused.len(), 1);
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn corrupt_object_is_not_restored() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let (out, cache, h) = setup(d.path());
        let m = Cache::new(&cache).read_manifest(&h).unwrap();
        let e = m.entries.iter().find(|e| e.path == b"f05").unwrap();
        let obj = Cache::new(&cache).object_path(&e.hash).unwrap();
        fs::set_permissions(&obj, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&obj, b"evil!!").unwrap(); // same size as "file 5"
        fs::remove_file(out.join("f05")).unwrap();
        let err = restore_partial(
            &h,
            &out,
            &cache,
            modes(&["copy"]),
            None,
            &Select::Missing,
            false,
        )
        .unwrap_err();
        assert!(matches!(err, Error::CacheCorrupt { .. }), "{err}");
        assert!(!out.join("f05").exists());
    }
}
