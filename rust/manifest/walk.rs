//! Walking a directory for a manifest: `walk` (entries with their lstat, for the cache insert)
//! and `hash_dir_info` (walk and hash every file, through the stat index when given), in
//! parallel with rayon (one task per directory; big directories stat their files in chunks).
//! Classification and errors follow docs/formats.md, "Directory manifest".

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use rayon::prelude::*;

use super::{
    depth_of, is_exec, link_target_ok, write_json_bytes, DirInfo, Kind, WalkEntry, HEADER,
};
use crate::counters;
use crate::error::{Error, IoContext, Result};
use crate::hash;
use crate::index::{self, Index};

fn type_name(ft: fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "unknown file type"
    }
}

/// The stored target of symlink `abs` (relative path `rel`), or an error if it leaves the tree.
fn link_target(root_real: &Path, abs: &Path, rel: &[u8]) -> Result<Vec<u8>> {
    let raw = fs::read_link(abs).at(abs)?;
    let raw = raw.as_os_str().as_bytes().to_vec();
    let depth = depth_of(rel);
    let lexical_ok = link_target_ok(&raw, depth);
    let outside = || {
        Error::manifest(
            abs,
            format!(
                "symlink points outside the directory ({})",
                String::from_utf8_lossy(&raw)
            ),
        )
    };
    match fs::canonicalize(abs) {
        Ok(resolved) => {
            let inner = resolved.strip_prefix(root_real).map_err(|_| outside())?;
            if lexical_ok {
                return Ok(raw);
            }
            // Absolute or roundabout target that resolves inside: store the plain relative form.
            let mut t = b"../".repeat(depth);
            t.extend_from_slice(inner.as_os_str().as_bytes());
            while t.ends_with(b"/") {
                t.pop();
            }
            if t.is_empty() {
                t = b".".to_vec();
            }
            Ok(t)
        }
        // Dangling but lexically inside: record it as is (restoring reproduces it).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && lexical_ok => Ok(raw),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(outside()),
        Err(e) => Err(Error::manifest(
            abs,
            format!("symlink cannot be resolved: {e}"),
        )),
    }
}

fn join_rel(rel: &[u8], name: &[u8]) -> Vec<u8> {
    if rel.is_empty() {
        return name.to_vec();
    }
    let mut v = Vec::with_capacity(rel.len() + 1 + name.len());
    v.extend_from_slice(rel);
    v.push(b'/');
    v.extend_from_slice(name);
    v
}

/// One directory per task; subdirectories fan out on rayon.
fn walk_dir(root_real: &Path, abs: &Path, rel: &[u8]) -> Result<Vec<WalkEntry>> {
    let mut out = Vec::new();
    let mut dirs = Vec::new();
    for ent in fs::read_dir(abs).at(abs)? {
        let ent = ent.at(abs)?;
        let child = ent.path();
        let crel = join_rel(rel, ent.file_name().as_bytes());
        let meta = ent.metadata().at(&child)?; // lstat: links are not followed
        let ft = meta.file_type();
        if ft.is_dir() {
            dirs.push((child, crel));
        } else if ft.is_file() {
            out.push(WalkEntry {
                rel: crel,
                abs: child,
                meta,
                kind: Kind::File,
            });
        } else if ft.is_symlink() {
            let t = link_target(root_real, &child, &crel)?;
            out.push(WalkEntry {
                rel: crel,
                abs: child,
                meta,
                kind: Kind::Link(t),
            });
        } else {
            return Err(Error::manifest(
                &child,
                format!("cannot be recorded in a manifest ({})", type_name(ft)),
            ));
        }
    }
    let subs: Vec<Vec<WalkEntry>> = dirs
        .into_par_iter()
        .map(|(a, r)| walk_dir(root_real, &a, &r))
        .collect::<Result<_>>()?;
    for s in subs {
        out.extend(s);
    }
    Ok(out)
}

/// Every file and in-tree symlink under `root`, sorted bytewise by relative path.
pub fn walk(root: &Path) -> Result<Vec<WalkEntry>> {
    hash::ensure_pool();
    let root_real = fs::canonicalize(root).at(root)?;
    let mut v = walk_dir(&root_real, root, b"")?;
    v.par_sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    Ok(v)
}

/// One hashed manifest entry before encoding: the raw hash, no per-entry hex `String`.
pub(super) struct Hashed {
    pub(super) path: Vec<u8>,
    pub(super) hash: [u8; 32],
    pub(super) size: u64,
    pub(super) exec: bool,
    pub(super) link: Option<Vec<u8>>,
}

/// Directories with at least this many files stat them in parallel chunks (a directory's
/// names are read on one thread; the `fstatat` calls, index lookups and any hashing fan out).
pub(super) const STAT_CHUNK: usize = 2048;

/// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`: an lstat relative to the open directory, so no
/// absolute path is built per file.
fn lstat_at(dirfd: libc::c_int, name: &[u8]) -> std::io::Result<libc::stat> {
    let mut buf = [0u8; 256];
    let owned;
    let cname: *const libc::c_char = if name.len() < buf.len() {
        buf[..name.len()].copy_from_slice(name);
        buf.as_ptr().cast()
    } else {
        owned = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
        owned.as_ptr()
    };
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `cname` is NUL-terminated and outlives the call; `st` is written on success.
    let r = unsafe { libc::fstatat(dirfd, cname, st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fstatat returned 0, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// Hash one regular file found by the walk: the index hit costs one `fstatat`; a miss (or a file
/// that is no longer regular) goes through the ordinary path-based code.
fn hash_walked_file(
    dirfd: libc::c_int,
    abs_dir: &Path,
    name: &[u8],
    rel: Vec<u8>,
    idx: Option<&Index>,
    hits: &mut u64,
) -> Result<Hashed> {
    let child = || abs_dir.join(OsStr::from_bytes(name));
    let st = lstat_at(dirfd, name).map_err(|e| Error::io(child(), e))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFREG {
        if let Some(h) = idx.and_then(|i| i.lookup_raw(&st)) {
            *hits += 1;
            return Ok(Hashed {
                path: rel,
                hash: h,
                size: st.st_size.cast_unsigned(),
                exec: st.st_mode & 0o100 != 0,
                link: None,
            });
        }
    }
    let abs = child();
    let meta = fs::symlink_metadata(&abs).at(&abs)?;
    if !meta.file_type().is_file() {
        return Err(Error::SourceChanged {
            path: abs,
            msg: "changed type while the directory was walked".into(),
        });
    }
    let (h, meta) = index::hash_file_with(&abs, &meta, idx)?;
    let hash = blake3::Hash::from_hex(&h)
        .map_err(|_| Error::manifest(&abs, "bad hash"))?
        .into();
    Ok(Hashed {
        path: rel,
        hash,
        size: meta.len(),
        exec: is_exec(&meta),
        link: None,
    })
}

/// Walk and hash one directory (subdirectories fan out on rayon), same classification and
/// errors as `walk_dir`.
fn hash_walk_dir(
    root_real: &Path,
    abs: &Path,
    rel: &[u8],
    idx: Option<&Index>,
) -> Result<Vec<Hashed>> {
    let dir = fs::File::open(abs).at(abs)?;
    let dirfd = std::os::unix::io::AsRawFd::as_raw_fd(&dir);
    let mut out = Vec::new();
    let mut files: Vec<Vec<u8>> = Vec::new();
    let mut dirs = Vec::new();
    for ent in fs::read_dir(abs).at(abs)? {
        let ent = ent.at(abs)?;
        let name = ent.file_name().into_vec();
        let ft = ent.file_type().at(&abs.join(OsStr::from_bytes(&name)))?; // d_type, or lstat
        if ft.is_file() {
            files.push(name);
        } else if ft.is_dir() {
            let crel = join_rel(rel, &name);
            dirs.push((ent.path(), crel));
        } else if ft.is_symlink() {
            let child = ent.path();
            let crel = join_rel(rel, &name);
            let t = link_target(root_real, &child, &crel)?;
            out.push(Hashed {
                path: crel,
                hash: blake3::hash(&t).into(),
                size: t.len() as u64,
                exec: false,
                link: Some(t),
            });
        } else {
            let child = ent.path();
            return Err(Error::manifest(
                &child,
                format!("cannot be recorded in a manifest ({})", type_name(ft)),
            ));
        }
    }
    let one = |name: Vec<u8>, hits: &mut u64| {
        let crel = if rel.is_empty() {
            name.clone()
        } else {
            join_rel(rel, &name)
        };
        hash_walked_file(dirfd, abs, &name, crel, idx, hits)
    };
    let hashed: Vec<Hashed> = if files.len() >= 2 * STAT_CHUNK {
        let chunks: Vec<Vec<Vec<u8>>> = {
            let mut v = Vec::new();
            let mut it = files.into_iter().peekable();
            while it.peek().is_some() {
                v.push(it.by_ref().take(STAT_CHUNK).collect());
            }
            v
        };
        let parts: Vec<Vec<Hashed>> = chunks
            .into_par_iter()
            .map(|c| {
                let mut hits = 0;
                let r = c
                    .into_iter()
                    .map(|n| one(n, &mut hits))
                    .collect::<Result<Vec<_>>>();
                counters::count_hits(hits);
                r
            })
            .collect::<Result<_>>()?;
        parts.into_iter().flatten().collect()
    } else {
        let mut hits = 0;
        let r = files
            .into_iter()
            .map(|n| one(n, &mut hits))
            .collect::<Result<Vec<_>>>();
        counters::count_hits(hits);
        r?
    };
    if out.is_empty() {
        out = hashed;
    } else {
        out.extend(hashed);
    }
    let subs: Vec<Vec<Hashed>> = dirs
        .into_par_iter()
        .map(|(a, r)| hash_walk_dir(root_real, &a, &r, idx))
        .collect::<Result<_>>()?;
    for s in subs {
        out.extend(s);
    }
    Ok(out)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The canonical manifest bytes of sorted `Hashed` entries, in one pre-sized buffer (same bytes
/// as `Manifest::to_bytes`).
fn encode_hashed(entries: &[Hashed]) -> Vec<u8> {
    use std::io::Write;
    let est: usize = entries.iter().map(|e| e.path.len() + 112).sum();
    let mut out = Vec::with_capacity(HEADER.len() + est);
    out.extend_from_slice(HEADER);
    for e in entries {
        out.extend_from_slice(b"{\"path\":");
        write_json_bytes(&mut out, &e.path);
        out.extend_from_slice(b",\"hash\":\"");
        let mut hex = [0u8; 64];
        for (i, b) in e.hash.iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        out.extend_from_slice(&hex);
        out.extend_from_slice(b"\",\"size\":");
        let _ = write!(out, "{}", e.size);
        out.extend_from_slice(if e.exec {
            b",\"exec\":true"
        } else {
            b",\"exec\":false"
        });
        if let Some(t) = &e.link {
            out.extend_from_slice(b",\"link\":");
            write_json_bytes(&mut out, t);
        }
        out.extend_from_slice(b"}\n");
    }
    out
}

/// Walk and hash a directory: its entries, canonical manifest bytes and summary.
pub(super) fn walk_hash(
    root: &Path,
    idx: Option<&Index>,
) -> Result<(Vec<Hashed>, Vec<u8>, DirInfo)> {
    hash::ensure_pool();
    let root_real = fs::canonicalize(root).at(root)?;
    let mut v = hash_walk_dir(&root_real, root, b"", idx)?;
    v.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let bytes = encode_hashed(&v);
    let info = DirInfo {
        hash: hash::hex(&blake3::hash(&bytes)),
        size: v.iter().map(|e| e.size).sum(),
        nfiles: v.len() as u64,
    };
    Ok((v, bytes, info))
}

/// Walk and hash a directory (files through the stat index when given); only the summary.
pub fn hash_dir_info(root: &Path, idx: Option<&Index>) -> Result<DirInfo> {
    walk_hash(root, idx).map(|(_, _, info)| info)
}

/// Walk and hash a directory; its canonical manifest bytes (what `pivot diff` compares).
pub fn hash_dir_bytes(root: &Path, idx: Option<&Index>) -> Result<Vec<u8>> {
    walk_hash(root, idx).map(|(_, bytes, _)| bytes)
}
