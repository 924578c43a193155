//! Differences between two directory manifests (`pivot diff`): which files were added, modified
//! or deleted. Both manifests are sorted bytewise by path (docs/formats.md, "Directory
//! manifest"), so one merge pass over the two line streams is enough: O(n + m).
//!
//! The pass reads manifest bytes in place instead of building `Manifest` values: per line it
//! takes the path (borrowed unless it holds an escape) and the rest of the line
//! (`,"hash":…,"size":…,"exec":…[,"link":…]}`); two entries with the same path differ exactly
//! when those rests differ, since the writer is canonical. That keeps a 10^6-entry diff far
//! below a second (`benchmarks/bench_results.py`), where the strict `Manifest::parse` (canonical
//! re-encode, path-safety set) costs seconds. Nothing is written from a diff, so the checks
//! here are the ones the merge needs: the object hashes to its name, the header, the line
//! shape, and strictly increasing paths; restores keep using the strict parse.
//!
//! A side is the empty tree, a directory object in the cache, or a directory in the workspace
//! (walked and hashed through the stat index, then encoded canonically). The two sides are
//! loaded in parallel.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fs;
use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::hash;
use crate::index::{self, Index};
use crate::manifest::{self, HEADER};

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

/// One manifest line: the raw path and everything after it.
struct Line<'a> {
    path: Cow<'a, [u8]>,
    rest: &'a [u8],
}

/// The entry lines of one manifest, checked as they are read.
struct Lines<'a> {
    data: &'a [u8],
    pos: usize,
    line_no: usize,
    src: &'a Path,
    prev: Option<Cow<'a, [u8]>>,
}

const PATH_KEY: &[u8] = b"{\"path\":\"";
const HASH_KEY: &[u8] = b",\"hash\":\"";

impl<'a> Lines<'a> {
    fn new(data: &'a [u8], src: &'a Path) -> Result<Lines<'a>> {
        if !data.starts_with(HEADER) {
            return Err(Error::manifest(
                src,
                "not a pivot manifest (bad header line)",
            ));
        }
        if !data.ends_with(b"\n") {
            return Err(Error::manifest(src, "truncated (no final newline)"));
        }
        Ok(Lines {
            data,
            pos: HEADER.len(),
            line_no: 1,
            src,
            prev: None,
        })
    }

    fn bad(&self, why: &str) -> Error {
        Error::manifest(self.src, format!("line {}: {why}", self.line_no))
    }

    fn next_line(&mut self) -> Result<Option<Line<'a>>> {
        let data = self.data;
        if self.pos >= data.len() {
            return Ok(None);
        }
        self.line_no += 1;
        let end = self.pos
            + data[self.pos..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(data.len() - self.pos);
        let line = &data[self.pos..end];
        self.pos = end + 1;
        let body = line
            .strip_prefix(PATH_KEY)
            .ok_or_else(|| self.bad("expected {\"path\":"))?;
        // The path string ends at the first quote that is not escaped.
        let (mut i, mut escaped) = (0, false);
        while i < body.len() && body[i] != b'"' {
            if body[i] == b'\\' {
                escaped = true;
                i += 1;
            }
            i += 1;
        }
        if i >= body.len() {
            return Err(self.bad("unterminated path string"));
        }
        let raw = &body[..i];
        let rest = &body[i + 1..];
        if !rest.starts_with(HASH_KEY) || !rest.ends_with(b"}") {
            return Err(self.bad("expected ,\"hash\": after the path"));
        }
        let path = if escaped {
            Cow::Owned(unescape(raw).map_err(|why| self.bad(why))?)
        } else {
            Cow::Borrowed(raw)
        };
        if let Some(prev) = &self.prev {
            if path.as_ref() <= prev.as_ref() {
                return Err(self.bad("entries not sorted or duplicated"));
            }
        }
        self.prev = Some(path.clone());
        Ok(Some(Line { path, rest }))
    }
}

/// A manifest JSON string's raw bytes (the escapes as `manifest::codec` writes them).
fn unescape(s: &[u8]) -> std::result::Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(at) = s[i..].iter().position(|&b| b == b'\\') {
        out.extend_from_slice(&s[i..i + at]);
        i += at + 1;
        i += manifest::decode_escape(&s[i..], &mut out)?;
    }
    out.extend_from_slice(&s[i..]);
    Ok(out)
}

/// Merge pass over two manifests' canonical bytes; `*_src` name them in errors.
pub fn diff_bytes(old: &[u8], new: &[u8], old_src: &Path, new_src: &Path) -> Result<Diff> {
    let mut old_lines = Lines::new(old, old_src)?;
    let mut new_lines = Lines::new(new, new_src)?;
    let mut out = Diff::default();
    let (mut left, mut right) = (old_lines.next_line()?, new_lines.next_line()?);
    loop {
        match (&left, &right) {
            (Some(l), Some(r)) => match l.path.cmp(&r.path) {
                Ordering::Less => {
                    out.deleted.push(l.path.to_vec());
                    left = old_lines.next_line()?;
                }
                Ordering::Greater => {
                    out.added.push(r.path.to_vec());
                    right = new_lines.next_line()?;
                }
                Ordering::Equal => {
                    if l.rest != r.rest {
                        out.modified.push(r.path.to_vec());
                    }
                    left = old_lines.next_line()?;
                    right = new_lines.next_line()?;
                }
            },
            (Some(l), None) => {
                out.deleted.push(l.path.to_vec());
                left = old_lines.next_line()?;
            }
            (None, Some(r)) => {
                out.added.push(r.path.to_vec());
                right = new_lines.next_line()?;
            }
            (None, None) => return Ok(out),
        }
    }
}

/// The bytes of directory object `h`, checked against its name.
fn read_cached(cache_dir: &Path, h: &str) -> Result<(Vec<u8>, PathBuf)> {
    let p = Cache::new(cache_dir).object_path(h)?;
    let data = match fs::read(&p) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::CacheMissing {
                path: p,
                hash: h.into(),
            })
        }
        Err(e) => return Err(Error::io(p, e)),
    };
    if hash::hash_bytes(&data) != h {
        return Err(Error::CacheCorrupt {
            path: p,
            hash: h.into(),
        });
    }
    Ok((data, p))
}

fn load(cache_dir: &Path, side: Side<'_>, idx: Option<&Index>) -> Result<(Vec<u8>, PathBuf)> {
    match side {
        Side::Empty => Ok((HEADER.to_vec(), PathBuf::from("<empty>"))),
        Side::Cached(h) => read_cached(cache_dir, h),
        Side::Dir(p) => Ok((manifest::hash_dir_bytes(p, idx)?, p.to_path_buf())),
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
    hash::ensure_pool();
    let idx = state_dir.map(Index::load);
    let (a, b) = rayon::join(
        || load(cache_dir, old, idx.as_ref()),
        || load(cache_dir, new, idx.as_ref()),
    );
    if let Some(i) = &idx {
        index::save_quietly(i);
    }
    let ((a, a_src), (b, b_src)) = (a?, b?);
    diff_bytes(&a, &b, &a_src, &b_src)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Entry, Manifest};

    fn entry(path: &[u8], hash_byte: u8, exec: bool) -> Entry {
        Entry {
            path: path.to_vec(),
            hash: format!("{hash_byte:02x}").repeat(32),
            size: 1,
            exec,
            link: None,
        }
    }

    fn diff(old: &Manifest, new: &Manifest) -> Diff {
        diff_bytes(
            &old.to_bytes(),
            &new.to_bytes(),
            Path::new("a"),
            Path::new("b"),
        )
        .unwrap()
    }

    fn strs(v: &[Vec<u8>]) -> Vec<String> {
        v.iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    #[test]
    fn merge_pass_finds_added_modified_deleted() {
        let old = Manifest::from_entries(vec![
            entry(b"a", 1, false),
            entry(b"b/x", 2, false),
            entry(b"c", 3, false),
            entry(b"d", 4, false),
            entry(b"z", 9, false),
        ]);
        let new = Manifest::from_entries(vec![
            entry(b"a", 1, false),
            entry(b"a-b", 5, false),
            entry(b"b/x", 6, false),
            entry(b"d", 4, true),
            entry(b"zz", 7, false),
        ]);
        let d = diff(&old, &new);
        assert_eq!(strs(&d.added), vec!["a-b", "zz"]);
        assert_eq!(strs(&d.modified), vec!["b/x", "d"]);
        assert_eq!(strs(&d.deleted), vec!["c", "z"]);
    }

    #[test]
    fn empty_sides() {
        let m = Manifest::from_entries(vec![entry(b"a", 1, false), entry(b"b", 2, false)]);
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
    fn escaped_paths_compare_by_their_raw_bytes() {
        // `"` (0x22) < `/` (0x2f) < `\` (0x5c) < 0xff: the order of the raw bytes, not of the
        // escaped text.
        let paths: [&[u8]; 5] = [b"a\"q", b"a/b", b"a\\b", b"a\nb\xff", b"a\xff"];
        let old = Manifest::from_entries(paths.iter().map(|p| entry(p, 1, false)).collect());
        let mut entries: Vec<Entry> = paths.iter().map(|p| entry(p, 1, false)).collect();
        entries[3].hash = "02".repeat(32);
        entries.remove(4);
        let new = Manifest::from_entries(entries);
        let d = diff(&old, &new);
        assert_eq!(d.modified, vec![b"a\nb\xff".to_vec()]);
        assert_eq!(d.deleted, vec![b"a\xff".to_vec()]);
        assert!(d.added.is_empty());
    }

    #[test]
    fn unsorted_or_malformed_manifests_are_errors_naming_the_line() {
        let good = Manifest::from_entries(vec![entry(b"a", 1, false), entry(b"b", 2, false)]);
        let bytes = good.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let swapped = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[1]);
        let e =
            diff_bytes(swapped.as_bytes(), &bytes, Path::new("obj"), Path::new("b")).unwrap_err();
        assert!(
            e.to_string().contains("obj: line 3: entries not sorted"),
            "{e}"
        );
        let e = diff_bytes(b"{}\n", &bytes, Path::new("obj"), Path::new("b")).unwrap_err();
        assert!(e.to_string().contains("bad header"), "{e}");
        let cut = &bytes[..bytes.len() - 1];
        assert!(diff_bytes(&bytes, cut, Path::new("a"), Path::new("b")).is_err());
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
        let bytes = manifest::hash_dir_bytes(&dir, None).unwrap();
        let hash = hash::hash_bytes(&bytes);
        let obj = Cache::new(cache.path()).object_path(&hash).unwrap();
        fs::create_dir_all(obj.parent().unwrap()).unwrap();
        fs::write(&obj, &bytes).unwrap();

        fs::write(dir.join("sub/edit"), b"v2").unwrap();
        fs::remove_file(dir.join("gone")).unwrap();
        fs::write(dir.join("new"), b"hi").unwrap();
        let d = diff_sides(cache.path(), Side::Cached(&hash), Side::Dir(&dir), None).unwrap();
        assert_eq!(strs(&d.added), vec!["new"]);
        assert_eq!(strs(&d.modified), vec!["sub/edit"]);
        assert_eq!(strs(&d.deleted), vec!["gone"]);

        let missing = "ab".repeat(32);
        let e = diff_sides(cache.path(), Side::Cached(&missing), Side::Empty, None).unwrap_err();
        assert!(matches!(e, Error::CacheMissing { .. }), "{e}");

        fs::write(&obj, b"tampered").unwrap();
        let e = diff_sides(cache.path(), Side::Cached(&hash), Side::Empty, None).unwrap_err();
        assert!(matches!(e, Error::CacheCorrupt { .. }), "{e}");
    }
}
