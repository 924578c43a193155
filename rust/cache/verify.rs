//! `cache_verify` (docs/formats.md, "Cache objects and link modes", Verify): re-hash cache
//! objects and report the ones whose content does not match their name (corrupt)
//! and the ones that are referenced but absent (missing).
//!
//! With a set of hashes, each is checked; one whose object is a valid manifest is a directory
//! and its file objects are checked too. Without, every object under `files/` is checked, and
//! every object that is a valid manifest also has its entries checked for presence. A manifest
//! is recognised by its header line and a successful strict parse.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::path::Path;

use rayon::prelude::*;

use crate::cache::Cache;
use crate::error::{Error, IoContext, Result};
use crate::hash;
use crate::manifest::{self, Manifest};

/// Python `VerifyReport`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub checked: u64,
    pub corrupt: Vec<String>,
    pub missing: Vec<String>,
}

enum Outcome {
    Ok(Option<Manifest>),
    Corrupt,
    Missing,
}

/// Hash one object; a valid manifest is returned parsed.
fn check_object(cache: &Cache, h: &str) -> Result<Outcome> {
    let p = cache.object_path(h)?;
    let mut f = match File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Outcome::Missing),
        Err(e) => return Err(Error::io(p, e)),
    };
    let size = f.metadata().at(&p)?.len();
    let mut head = [0u8; 32];
    let n = hash::read_full(&mut f, &mut head[..manifest::HEADER.len()]).at(&p)?;
    if &head[..n] == manifest::HEADER {
        let mut data = head[..n].to_vec();
        f.read_to_end(&mut data).at(&p)?;
        if hash::hash_bytes(&data) != h {
            return Ok(Outcome::Corrupt);
        }
        return Ok(Outcome::Ok(Manifest::parse(&data, &p).ok()));
    }
    f.rewind().at(&p)?;
    let got = hash::hash_open_file(&mut f, size).at(&p)?;
    Ok(if got.to_hex().as_str() == h {
        Outcome::Ok(None)
    } else {
        Outcome::Corrupt
    })
}

/// Verify the objects reached from `hashes`, or every object with `None`.
pub fn verify(cache_dir: &Path, hashes: Option<&[String]>) -> Result<Report> {
    hash::ensure_pool();
    let cache = Cache::new(cache_dir);
    let all_mode = hashes.is_none();
    let first: Vec<String> = match hashes {
        Some(h) => {
            for x in h {
                cache.object_path(x)?; // validates
            }
            let set: BTreeSet<&String> = h.iter().collect();
            set.into_iter().cloned().collect()
        }
        None => cache.list_objects()?,
    };
    let mut report = Report::default();
    let mut corrupt = BTreeSet::new();
    let mut missing = BTreeSet::new();
    let mut done: BTreeSet<String> = first.iter().cloned().collect();
    let mut wave = first;
    while !wave.is_empty() {
        let outcomes: Vec<(String, Outcome)> = wave
            .into_par_iter()
            .map(|h| check_object(&cache, &h).map(|o| (h, o)))
            .collect::<Result<_>>()?;
        let mut next = BTreeSet::new();
        for (h, o) in outcomes {
            match o {
                Outcome::Missing => {
                    missing.insert(h);
                }
                Outcome::Corrupt => {
                    report.checked += 1;
                    corrupt.insert(h);
                }
                Outcome::Ok(m) => {
                    report.checked += 1;
                    for e in m.iter().flat_map(|m| &m.entries) {
                        if e.link.is_none() && !done.contains(&e.hash) {
                            next.insert(e.hash.clone());
                        }
                    }
                }
            }
        }
        if all_mode {
            // Every present object was already hashed: only presence is left to check.
            for h in std::mem::take(&mut next) {
                let p = cache.object_path(&h)?;
                if fs::symlink_metadata(&p).is_err() {
                    missing.insert(h.clone());
                }
                done.insert(h);
            }
        }
        done.extend(next.iter().cloned());
        wave = next.into_iter().collect();
    }
    report.corrupt = corrupt.into_iter().collect();
    report.missing = missing.into_iter().collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::insert::insert;
    use crate::cache::link::parse_modes;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reports_corrupt_and_missing() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("t");
        fs::create_dir_all(root.join("s")).unwrap();
        fs::write(root.join("a"), b"aaaa").unwrap();
        fs::write(root.join("s/b"), b"bbbb").unwrap();
        fs::write(root.join("c"), b"cccc").unwrap();
        let cache_dir = d.path().join("cache");
        let info = insert(&root, &cache_dir, None, parse_modes(&["copy"]).unwrap()).unwrap();
        let cache = Cache::new(&cache_dir);
        let clean = verify(&cache_dir, None).unwrap();
        assert_eq!(
            clean,
            Report {
                checked: 4,
                ..Default::default()
            }
        );
        let by_dir = verify(&cache_dir, Some(std::slice::from_ref(&info.hash))).unwrap();
        assert_eq!(by_dir.checked, 4);

        let ha = hash::hash_bytes(b"aaaa");
        let pa = cache.object_path(&ha).unwrap();
        fs::set_permissions(&pa, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&pa, b"AAAA").unwrap(); // same size
        let hb = hash::hash_bytes(b"bbbb");
        fs::remove_file(cache.object_path(&hb).unwrap()).unwrap();

        for r in [
            verify(&cache_dir, None).unwrap(),
            verify(&cache_dir, Some(std::slice::from_ref(&info.hash))).unwrap(),
        ] {
            assert_eq!(r.corrupt, vec![ha.clone()]);
            assert_eq!(r.missing, vec![hb.clone()]);
            assert_eq!(r.checked, 3);
        }
        let absent = "0".repeat(64);
        let r = verify(&cache_dir, Some(std::slice::from_ref(&absent))).unwrap();
        assert_eq!((r.checked, r.missing), (0, vec![absent]));
        assert!(verify(&cache_dir, Some(&["zz".into()])).is_err());
    }
}
