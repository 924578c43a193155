//! Directory manifests: parallel walk, canonical bytes, strict parse.
//!
//! API (used by cache.rs / restore.rs / verify.rs):
//! - `walk(root) -> Vec<WalkEntry>`: every file and symlink under `root` (lstat metadata, not
//!   followed), sorted bytewise by relative path; in-tree symlinks carry their stored target;
//!   out-of-tree symlinks, fifos, sockets and devices are `Error::Manifest` naming the path.
//! - `hash_dir(root, index) -> (Manifest, DirInfo)`: walk + hash every file (through the stat
//!   index when given).
//! - `Manifest { entries }`, `Manifest::from_entries` (sorts), `to_bytes()`, `hash()`,
//!   `Manifest::parse(bytes, path_for_errors)` which rejects unsafe or non-canonical content.
//! - `rel_path(&[u8]) -> &Path` to join an entry path onto a directory.
//!
//! Byte format (docs/formats.md, "Manifest"): JSON lines. First line `{"pivot_manifest":1}`, then
//! one line per entry `{"path":…,"hash":…,"size":N,"exec":B}` (links add `,"link":…`). Paths are
//! raw POSIX bytes written as JSON strings; bytes that are not UTF-8 are written `\udcXX`
//! (Python's surrogateescape), so `os.fsencode(json.loads(line)["path"])` gives the raw bytes.

use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, IoContext, Result};
use crate::hash;
use crate::index::{self, Index};

mod codec;

pub use codec::write_json_bytes;
use codec::{encode_entry, parse_line};

pub const HEADER: &[u8] = b"{\"pivot_manifest\":1}\n";

/// What a walked path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    /// An in-tree symlink; the target text as stored (relative, stays inside the tree).
    Link(Vec<u8>),
}

/// One file or symlink found by `walk`.
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// Relative POSIX path bytes (`a/b/c`).
    pub rel: Vec<u8>,
    pub abs: PathBuf,
    /// lstat metadata from the walk (size, mtime, ctime, ino, dev, mode).
    pub meta: Metadata,
    pub kind: Kind,
}

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    /// Content hash; for a link, blake3 of the target bytes.
    pub hash: String,
    /// File size; for a link, the target length.
    pub size: u64,
    pub exec: bool,
    pub link: Option<Vec<u8>>,
}

impl Entry {
    pub fn for_link(path: Vec<u8>, target: Vec<u8>) -> Entry {
        Entry {
            hash: hash::hash_bytes(&target),
            size: target.len() as u64,
            exec: false,
            link: Some(target),
            path,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub entries: Vec<Entry>,
}

/// Summary of a hashed directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirInfo {
    pub hash: String,
    pub size: u64,
    pub nfiles: u64,
}

/// A relative manifest path as a `Path` (for joining onto a directory).
pub fn rel_path(rel: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(rel))
}

/// Exec bit as recorded: the owner's execute permission (as git does).
pub fn is_exec(meta: &Metadata) -> bool {
    meta.permissions().mode() & 0o100 != 0
}

impl Manifest {
    /// Build from entries in any order (sorted bytewise by path here).
    pub fn from_entries(mut entries: Vec<Entry>) -> Manifest {
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        Manifest { entries }
    }

    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    pub fn nfiles(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The canonical bytes (the directory object's content).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER.len() + self.entries.len() * 120);
        out.extend_from_slice(HEADER);
        for e in &self.entries {
            encode_entry(&mut out, e);
        }
        out
    }

    /// The directory hash: blake3 of the canonical bytes.
    pub fn hash(&self) -> String {
        hash::hash_bytes(&self.to_bytes())
    }

    pub fn info(&self) -> DirInfo {
        DirInfo {
            hash: self.hash(),
            size: self.total_size(),
            nfiles: self.nfiles(),
        }
    }

    /// Parse and validate manifest bytes; `src` names the object in errors. Rejects anything
    /// `to_bytes` would not have produced, and any path that could escape the directory.
    pub fn parse(data: &[u8], src: &Path) -> Result<Manifest> {
        let body = data
            .strip_prefix(HEADER)
            .ok_or_else(|| Error::manifest(src, "not a pivot manifest (bad header line)"))?;
        let mut entries = Vec::new();
        if !body.is_empty() {
            let body = body
                .strip_suffix(b"\n")
                .ok_or_else(|| Error::manifest(src, "truncated (no final newline)"))?;
            for (i, line) in body.split(|&b| b == b'\n').enumerate() {
                let e = parse_line(line)
                    .map_err(|m| Error::manifest(src, format!("line {}: {m}", i + 2)))?;
                entries.push(e);
            }
        }
        let m = Manifest { entries };
        validate(&m, src)?;
        if m.to_bytes() != data {
            return Err(Error::manifest(src, "not in canonical form"));
        }
        Ok(m)
    }
}

/// Why a relative manifest path is unsafe, if it is.
pub fn check_rel_path(p: &[u8]) -> std::result::Result<(), &'static str> {
    if p.is_empty() {
        return Err("empty path");
    }
    if p[0] == b'/' {
        return Err("absolute path");
    }
    if p.contains(&0) {
        return Err("contains NUL");
    }
    for comp in p.split(|&b| b == b'/') {
        match comp {
            b"" => return Err("empty path component"),
            b"." => return Err("contains '.' component"),
            b".." => return Err("contains '..'"),
            _ => {}
        }
    }
    Ok(())
}

/// A link target in stored form: `..` components only at the start, then plain names, staying
/// inside the tree from a link whose parent is `depth` levels deep; or exactly `.` at depth 0.
pub fn link_target_ok(target: &[u8], depth: usize) -> bool {
    if target == b"." {
        return true;
    }
    if target.is_empty() || target[0] == b'/' || target.contains(&0) {
        return false;
    }
    let mut ups = 0usize;
    let mut names = false;
    for comp in target.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => return false,
            b".." if names => return false,
            b".." => ups += 1,
            _ => names = true,
        }
    }
    ups <= depth
}

fn depth_of(rel: &[u8]) -> usize {
    rel.iter().filter(|&&b| b == b'/').count()
}

fn validate(m: &Manifest, src: &Path) -> Result<()> {
    let unsafe_entry = |p: &[u8], why: &str| {
        Error::unsafe_path(
            src,
            format!("entry {:?}: {why}", String::from_utf8_lossy(p)),
        )
    };
    for w in m.entries.windows(2) {
        if w[0].path >= w[1].path {
            return Err(Error::manifest(
                src,
                format!(
                    "entries not sorted or duplicated at {:?}",
                    String::from_utf8_lossy(&w[1].path)
                ),
            ));
        }
    }
    let all: std::collections::HashSet<&[u8]> =
        m.entries.iter().map(|e| e.path.as_slice()).collect();
    for e in &m.entries {
        check_rel_path(&e.path).map_err(|why| unsafe_entry(&e.path, why))?;
        // A path may not run through another entry (a file or link is never a directory).
        let mut pos = 0;
        while let Some(k) = e.path[pos..].iter().position(|&b| b == b'/') {
            if all.contains(&e.path[..pos + k]) {
                return Err(unsafe_entry(&e.path, "a parent path is itself an entry"));
            }
            pos += k + 1;
        }
        if let Some(t) = &e.link {
            if !link_target_ok(t, depth_of(&e.path)) {
                return Err(unsafe_entry(&e.path, "link target leaves the directory"));
            }
            if e.hash != hash::hash_bytes(t) || e.size != t.len() as u64 || e.exec {
                return Err(unsafe_entry(
                    &e.path,
                    "link entry fields do not match its target",
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Walking

fn type_name(ft: &fs::FileType) -> &'static str {
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
        Ok(real) => {
            let inner = real.strip_prefix(root_real).map_err(|_| outside())?;
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
                format!("cannot be recorded in a manifest ({})", type_name(&ft)),
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

/// Walk and hash a directory (files through the stat index when given).
pub fn hash_dir(root: &Path, idx: Option<&Index>) -> Result<(Manifest, DirInfo)> {
    let walked = walk(root)?;
    let entries: Vec<Entry> = walked
        .into_par_iter()
        .map(|w| match w.kind {
            Kind::Link(t) => Ok(Entry::for_link(w.rel, t)),
            Kind::File => {
                let (h, meta) = index::hash_file_with(&w.abs, &w.meta, idx)?;
                Ok(Entry {
                    path: w.rel,
                    hash: h,
                    size: meta.len(),
                    exec: is_exec(&meta),
                    link: None,
                })
            }
        })
        .collect::<Result<_>>()?;
    let m = Manifest { entries };
    let info = m.info();
    Ok((m, info))
}

/// `<cache_dir>/files/<2 hex>/<62 hex>`: where the object named `hash` lives.
pub fn object_path(cache_dir: &Path, hash: &str) -> PathBuf {
    cache_dir.join("files").join(&hash[..2]).join(&hash[2..])
}

/// Read the directory object `dir_hash` from the cache and parse it; its bytes must hash to its
/// name (`CacheCorrupt` otherwise) and it must exist (`CacheMissing`).
pub fn load_from_cache(cache_dir: &Path, dir_hash: &str) -> Result<Manifest> {
    if !hash::is_hex64(dir_hash) {
        return Err(Error::Invalid {
            path: cache_dir.into(),
            msg: format!("{dir_hash:?} is not a 64-hex blake3 hash"),
        });
    }
    let p = object_path(cache_dir, dir_hash);
    let data = match fs::read(&p) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
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
    Manifest::parse(&data, &p)
}

#[cfg(test)]
mod tests;
