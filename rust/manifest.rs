//! Directory manifests: parallel walk, canonical bytes, strict parse.
//!
//! API (used by `paths` and the cache):
//! - `walk(root) -> Vec<WalkEntry>`: every file and symlink under `root` (lstat metadata, not
//!   followed), sorted bytewise by relative path; in-tree symlinks carry their stored target;
//!   out-of-tree symlinks, fifos, sockets and devices are `Error::Manifest` naming the path.
//! - `hash_dir_info(root, index) -> DirInfo`: walk + hash every file
//!   (lstat via `fstatat` on the directory fd, in parallel chunks for big directories; through
//!   the stat index when given).
//! - `Manifest { entries }`, `Manifest::from_entries` (sorts), `to_bytes()`,
//!   `Manifest::parse(bytes, path_for_errors)` which rejects unsafe or non-canonical content.
//! - `rel_path(&[u8]) -> &Path` to join an entry path onto a directory.
//!
//! Byte format (docs/formats.md, "Manifest"): JSON lines. First line `{"pivot_manifest":1}`, then
//! one line per entry `{"path":…,"hash":…,"size":N,"exec":B}` (links add `,"link":…`). Paths are
//! raw POSIX bytes written as JSON strings; bytes that are not UTF-8 are written `\udcXX`
//! (Python's surrogateescape), so `os.fsencode(json.loads(line)["path"])` gives the raw bytes.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::hash;

mod codec;
pub(crate) use codec::decode_escape;
mod walk;

pub use codec::write_json_bytes;
use codec::{encode_entry, parse_line, scan_file_hash};
pub use walk::{hash_dir_bytes, hash_dir_info, walk};

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

    /// Parse and validate manifest bytes; `src` names the object in errors. Rejects anything
    /// `to_bytes` would not have produced, and any path that could escape the directory.
    pub fn parse(data: &[u8], src: &Path) -> Result<Manifest> {
        let mut entries = Vec::new();
        for_each_line(data, src, |line| {
            entries.push(parse_line(line)?);
            Ok(())
        })?;
        let m = Manifest { entries };
        validate(&m, src)?;
        if m.to_bytes() != data {
            return Err(Error::manifest(src, "not in canonical form"));
        }
        Ok(m)
    }
}

/// The raw names of the files (not links) listed by manifest bytes, in order: what a push
/// needs from a 10^6-entry manifest, at a fraction of `Manifest::parse`'s cost. Only for bytes
/// already verified against their name (written by `to_bytes`, so canonical); `src` names the
/// object in errors.
pub fn file_names(data: &[u8], src: &Path) -> Result<Vec<[u8; 32]>> {
    let mut names = Vec::new();
    for_each_line(data, src, |line| {
        names.extend(scan_file_hash(line)?);
        Ok(())
    })?;
    Ok(names)
}

/// Check the header and the final newline of manifest bytes and hand `f` each entry line; an
/// error of `f` names its line (the header is line 1).
fn for_each_line(
    data: &[u8],
    src: &Path,
    mut f: impl FnMut(&[u8]) -> std::result::Result<(), String>,
) -> Result<()> {
    let body = data
        .strip_prefix(HEADER)
        .ok_or_else(|| Error::manifest(src, "not a pivot manifest (bad header line)"))?;
    if body.is_empty() {
        return Ok(());
    }
    let body = body
        .strip_suffix(b"\n")
        .ok_or_else(|| Error::manifest(src, "truncated (no final newline)"))?;
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        f(line).map_err(|m| Error::manifest(src, format!("line {}: {m}", i + 2)))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests;
