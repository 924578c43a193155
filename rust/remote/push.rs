//! Push: publish cache objects to a remote in the order that keeps it readable at every
//! instant (docs/remote.md "Publication order"):
//!
//! 1. file objects: each pack, then its index (`remote_pack_put` between them); big objects
//!    loose (`remote_object_put` after each);
//! 2. only then the directory manifests whose every file is now on the remote, the same way;
//! 3. run-cache entries come after, from the caller (`runs::push`).
//!
//! A crash anywhere leaves at worst a pack without an index, which no reader ever looks at
//! (indexes are the only way into a pack); a re-push finds the pack by name and only writes
//! its index.

use std::path::Path;

use futures::{StreamExt, TryStreamExt};

use super::packidx;
use super::transfer::{self, Source};
use super::{progress_add, progress_reset, Remote, LOOSE_MIN, PACK_TARGET};
use crate::atomic::kill_point;
use crate::cache::Cache;
use crate::error::{Error, Result};
#[cfg(test)]
use crate::manifest;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Objects uploaded by this push and their bytes.
    pub uploaded: u64,
    pub bytes: u64,
    /// Objects the remote already had.
    pub skipped: u64,
    /// Objects absent from the local cache (not pushed).
    pub missing: Vec<String>,
    /// Directories whose manifest was not published because some file was missing locally.
    pub incomplete: Vec<String>,
}

/// Push `items` (hash, `is_dir`): directory items bring their manifest and every file in it.
pub fn push(r: &Remote, cache_dir: &Path, items: &[(String, bool)]) -> Result<PushReport> {
    r.block_on(push_async(r, cache_dir, items))
}

/// A raw object name (the 32 bytes of its blake3), to keep 10^6-file pushes compact.
type Raw = [u8; 32];

fn hex(raw: &Raw) -> String {
    crate::hash::hex(&blake3::Hash::from(*raw))
}

async fn push_async(r: &Remote, cache_dir: &Path, items: &[(String, bool)]) -> Result<PushReport> {
    let cache = Cache::new(cache_dir);
    r.check_format(true).await?;
    let cat = r.catalog().await?;
    let mut report = PushReport::default();
    // Objects the remote's indexes already list are skipped without touching the local cache:
    // a no-change push reads the manifests and the index set, and stats nothing.
    let mut seen = packidx::NameSet::default();
    let mut files: Vec<Raw> = vec![];
    let mut skipped = 0u64;
    // Directories, with those of their files the remote does not have yet.
    let mut dirs: Vec<(String, Vec<Raw>)> = vec![];
    for (h, is_dir) in items {
        if !crate::hash::is_hex64(h) {
            return Err(Error::Invalid {
                path: cache_dir.into(),
                msg: format!("{h:?} is not a 64-hex blake3 hash"),
            });
        }
        if !*is_dir {
            let raw = packidx::raw(h).expect("validated hash");
            if seen.insert(raw) {
                if cat.contains(&raw) {
                    skipped += 1;
                } else {
                    files.push(raw);
                }
            }
            continue;
        }
        match cache.manifest_file_names(h) {
            Ok(all) => {
                let mut names = vec![];
                for raw in all {
                    if cat.contains(&raw) {
                        if seen.insert(raw) {
                            skipped += 1;
                        }
                        continue;
                    }
                    names.push(raw);
                    if seen.insert(raw) {
                        files.push(raw);
                    }
                }
                names.shrink_to_fit();
                dirs.push((h.clone(), names));
            }
            Err(Error::CacheMissing { .. }) => report.missing.push(h.clone()),
            Err(e) => return Err(e),
        }
    }
    drop(seen);
    drop(cat);
    progress_reset((files.len() as u64) + skipped + dirs.len() as u64);
    report.skipped += skipped;
    progress_add(0, 0, skipped);
    let (present, missing) = local_sizes(&cache, &files)?;
    drop(files);
    let missing_set: packidx::NameSet = missing.iter().copied().collect();
    publish(r, &cache, present, &mut report).await?;
    let mut manifests = vec![];
    for (h, names) in &dirs {
        if names.iter().any(|n| missing_set.contains(n)) {
            report.incomplete.push(h.clone());
        } else {
            manifests.push(packidx::raw(h).expect("validated hash"));
        }
    }
    drop(dirs);
    let (present_m, _) = local_sizes(&cache, &manifests)?;
    publish(r, &cache, present_m, &mut report).await?;
    report.missing.extend(missing.iter().map(hex));
    report.missing.sort();
    report.missing.dedup();
    Ok(report)
}

/// (name, size) of the objects present in the cache, and the names of those absent.
type Sizes = (Vec<(Raw, u64)>, Vec<Raw>);

fn local_sizes(cache: &Cache, hashes: &[Raw]) -> Result<Sizes> {
    let mut present = Vec::with_capacity(hashes.len());
    let mut missing = vec![];
    for h in hashes {
        match std::fs::metadata(cache.object_path(&hex(h))?) {
            Ok(m) if m.is_file() => present.push((*h, m.len())),
            _ => missing.push(*h),
        }
    }
    Ok((present, missing))
}

/// Upload whichever of `objs` the remote lacks: small ones in new packs (each followed by its
/// index), big ones loose. Returns when everything is published.
async fn publish(
    r: &Remote,
    cache: &Cache,
    objs: Vec<(Raw, u64)>,
    report: &mut PushReport,
) -> Result<()> {
    let cat = r.catalog().await?;
    let mut small = vec![];
    let mut big = vec![];
    for (h, len) in objs {
        if cat.contains(&h) {
            report.skipped += 1;
            progress_add(0, 0, 1);
        } else if len < LOOSE_MIN {
            small.push((h, len));
        } else {
            big.push((h, len));
        }
    }
    drop(cat);
    // Loose objects (only big ones are loose) are not in any index: their upload asks the
    // remote first (one HEAD) and counts one already there as skipped.
    let mut jobs: Vec<Job> = big.into_iter().map(|(h, len)| Job::Loose(h, len)).collect();
    let mut pack: Vec<(Raw, u64)> = vec![];
    let mut size = 0;
    for (h, len) in small {
        size += len;
        pack.push((h, len));
        if size >= PACK_TARGET {
            jobs.push(Job::Pack(std::mem::take(&mut pack)));
            size = 0;
        }
    }
    if !pack.is_empty() {
        jobs.push(Job::Pack(pack));
    }
    // Bounded: each job holds at most a few parts in memory.
    let done: Vec<Done> = futures::stream::iter(jobs)
        .map(|j| run_job(r, cache, j))
        .buffer_unordered(r.jobs.min(8))
        .try_collect()
        .await?;
    for d in done {
        report.uploaded += d.uploaded;
        report.bytes += d.bytes;
        report.skipped += d.skipped;
    }
    Ok(())
}

/// What one job did.
struct Done {
    uploaded: u64,
    bytes: u64,
    skipped: u64,
}

enum Job {
    Loose(Raw, u64),
    Pack(Vec<(Raw, u64)>),
}

fn source(cache: &Cache, h: &Raw, len: u64) -> Result<Source> {
    let hash = hex(h);
    Ok(Source {
        path: cache.object_path(&hash)?,
        hash,
        len,
    })
}

async fn run_job(r: &Remote, cache: &Cache, job: Job) -> Result<Done> {
    match job {
        Job::Loose(h, len) => {
            let src = vec![source(cache, &h, len)?];
            let rel = Remote::object_key(&hex(&h));
            if !transfer::upload(r, &rel, src, len).await? {
                progress_add(0, 0, 1);
                return Ok(Done {
                    uploaded: 0,
                    bytes: 0,
                    skipped: 1,
                });
            }
            r.make_durable(&rel)?;
            kill_point("remote_object_put");
            progress_add(1, len, 0);
            Ok(Done {
                uploaded: 1,
                bytes: len,
                skipped: 0,
            })
        }
        Job::Pack(objs) => {
            let (idx_bytes, id, _) = packidx::build(&objs);
            let total: u64 = objs.iter().map(|(_, l)| l).sum();
            let idx_rel = format!("index/{id}.idx");
            if !r.exists(&idx_rel).await? {
                let src = objs
                    .iter()
                    .map(|(h, l)| source(cache, h, *l))
                    .collect::<Result<_>>()?;
                let pack_rel = format!("packs/{id}.pack");
                transfer::upload(r, &pack_rel, src, total).await?;
                r.make_durable(&pack_rel)?;
                kill_point("remote_pack_put");
                r.put_once(&idx_rel, idx_bytes.clone().into()).await?;
                r.make_durable(&idx_rel)?;
                kill_point("remote_index_put");
            }
            let parsed = packidx::parse(&idx_bytes, &id).expect("index we just built");
            r.catalog_add(parsed);
            progress_add(objs.len() as u64, total, 0);
            Ok(Done {
                uploaded: objs.len() as u64,
                bytes: total,
                skipped: 0,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use futures::TryStreamExt;

    fn keys(r: &Remote, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = r
            .block_on(r.store.list(Some(&r.key(sub))).try_collect::<Vec<_>>())
            .unwrap()
            .into_iter()
            .map(|m| m.location.to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn small_objects_go_in_one_pack_with_an_index_and_a_repush_uploads_nothing() {
        let (d, names) = cache_with(&[b"a", b"bb", b"ccc"]);
        let r = memory_remote();
        let items: Vec<_> = names.iter().map(|h| (h.clone(), false)).collect();
        let rep = push(&r, d.path(), &items).unwrap();
        assert_eq!((rep.uploaded, rep.bytes, rep.skipped), (3, 6, 0));
        assert_eq!(keys(&r, "packs").len(), 1);
        assert_eq!(keys(&r, "index").len(), 1);
        // A new handle (a new command) sees them through the index.
        let r2 = Remote::with_store(&config("mem"), r.store.clone(), "pfx".into(), None);
        let rep = push(&r2, d.path(), &items).unwrap();
        assert_eq!((rep.uploaded, rep.skipped), (0, 3));
    }

    #[test]
    fn big_objects_are_loose() {
        let big = vec![1u8; usize::try_from(LOOSE_MIN).unwrap()];
        let (d, names) = cache_with(&[&big]);
        let r = memory_remote();
        let rep = push(&r, d.path(), &[(names[0].clone(), false)]).unwrap();
        assert_eq!(rep.uploaded, 1);
        assert_eq!(
            keys(&r, "objects"),
            vec![format!("pfx/{}", Remote::object_key(&names[0]))]
        );
        let r2 = Remote::with_store(&config("mem"), r.store.clone(), "pfx".into(), None);
        assert_eq!(
            push(&r2, d.path(), &[(names[0].clone(), false)])
                .unwrap()
                .skipped,
            1
        );
    }

    #[test]
    fn missing_local_objects_are_reported_and_keep_their_directory_unpublished() {
        let (d, names) = cache_with(&[b"x"]);
        let absent = crate::hash::hash_bytes(b"absent");
        let m = manifest::Manifest::from_entries(vec![
            manifest::Entry {
                path: b"a".to_vec(),
                hash: names[0].clone(),
                size: 1,
                exec: false,
                link: None,
            },
            manifest::Entry {
                path: b"b".to_vec(),
                hash: absent.clone(),
                size: 6,
                exec: false,
                link: None,
            },
        ]);
        let bytes = m.to_bytes();
        let mh = crate::hash::hash_bytes(&bytes);
        let p = object(d.path(), &mh);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &bytes).unwrap();
        let r = memory_remote();
        let rep = push(&r, d.path(), &[(mh.clone(), true)]).unwrap();
        assert_eq!(rep.missing, vec![absent]);
        assert_eq!(rep.incomplete, vec![mh.clone()]);
        assert_eq!(
            rep.uploaded, 1,
            "the present file is pushed, the manifest is not"
        );
        let cat = r.block_on(r.catalog()).unwrap();
        assert!(!cat.contains(&packidx::raw(&mh).unwrap()));
    }
}
