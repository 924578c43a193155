//! Fetch: bring objects from a remote into the local cache, every byte verified.
//!
//! Directory items first get their manifest (from the cache if it is there and valid, else
//! from the remote, verified, then parsed with the cache's own parser), then their files.
//! Objects in packs are grouped by pack and fetched with a bounded number of range GETs
//! (neighbours closer than `GAP` share one request, up to `MAX_RANGE` bytes); loose objects
//! with one GET each. An object whose bytes do not hash to its name is reported and never
//! stored (`transfer::download`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use futures::{StreamExt, TryStreamExt};

use super::catalog::Catalog;
use super::packidx;
use super::place::Placer;
use super::transfer::{self, Got, Job, Outcome, Sink, Want};
use super::{progress_add, progress_reset, Remote, LOOSE_MIN};
use crate::cache::insert::write_object;
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::manifest::Manifest;

/// Holes up to this size between wanted objects of one pack are read rather than split.
const GAP: u64 = 1 << 20;
/// Largest single range request.
const MAX_RANGE: u64 = 64 << 20;

/// An object that could not be fetched, and where it belongs when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub hash: String,
    /// The directory (manifest hash) and path inside it, for files of directory items.
    pub dir: Option<String>,
    pub path: Option<Vec<u8>>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FetchReport {
    pub fetched: u64,
    pub bytes: u64,
    /// Objects already in the local cache.
    pub skipped: u64,
    pub missing: Vec<Problem>,
    pub corrupt: Vec<Problem>,
}

/// Fetch `items` into the cache at `cache_dir`. With `state_dir`, every object fetched is
/// recorded in that project's stat index (`place`), so the checkout that follows does not read
/// it again.
pub fn fetch(
    r: &Remote,
    cache_dir: &Path,
    items: &[(String, bool)],
    state_dir: Option<&Path>,
) -> Result<FetchReport> {
    let rep = fetch_into(r, cache_dir, items, state_dir);
    // A pull goes on to a checkout in the same process: without this, the allocator keeps
    // what the fetch freed (its writer threads' arenas: 10^6 names, the stat index) and the
    // checkout's peak lands on top of the fetch's (913 MiB for 10^6 files, each alone ~600).
    release_freed_memory();
    rep
}

/// Hand what this process freed back to the OS (glibc otherwise keeps it in its arenas).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn fetch_into(
    r: &Remote,
    cache_dir: &Path,
    items: &[(String, bool)],
    state_dir: Option<&Path>,
) -> Result<FetchReport> {
    for (h, _) in items {
        if !crate::hash::is_hex64(h) {
            return Err(Error::Invalid {
                path: cache_dir.into(),
                msg: format!("{h:?} is not a 64-hex blake3 hash"),
            });
        }
    }
    crate::hash::ensure_pool();
    let cache = Cache::new(cache_dir);
    cache.prepare()?;
    let idx = state_dir.map(Index::load);
    let placer = Placer::new(&cache, idx.as_ref());
    let budget = tokio::sync::Semaphore::new(transfer::BUDGET);
    let rep = with_writers(&placer, &budget, |ctx| {
        r.block_on(fetch_async(r, &cache, items, ctx))
    })?;
    if rep.fetched > 0 {
        cache.sync_fs()?;
        // Only now: the index must never vouch for an object whose bytes are not on disk.
        if let Some(i) = &idx {
            crate::index::save_quietly(i);
        }
    }
    Ok(rep)
}

/// What a fetch's downloads share (a `Sink` is made from it per batch of requests).
pub struct Ctx<'a, 'j> {
    pub placer: &'j Placer<'j>,
    pub spawn: &'a (dyn Fn(Job<'j>) + Sync),
    pub budget: &'j tokio::sync::Semaphore,
}

/// Run `f` with writer threads: the network runs on this thread (`block_on` inside `f`), the
/// objects it cuts out are written by the hashing pool's threads, so neither waits for the
/// other; every job has ended when this returns.
fn with_writers<'j, R>(
    placer: &'j Placer<'j>,
    budget: &'j tokio::sync::Semaphore,
    f: impl FnOnce(&Ctx<'_, 'j>) -> R,
) -> R {
    rayon::in_place_scope(|s: &rayon::Scope<'j>| {
        let spawn = |j: Job<'j>| s.spawn(move |_| j());
        f(&Ctx {
            placer,
            spawn: &spawn,
            budget,
        })
    })
}

fn local_ok(cache: &Cache, h: &str, size: Option<u64>) -> bool {
    cache
        .object_path(h)
        .ok()
        .and_then(|p| std::fs::symlink_metadata(p).ok())
        .is_some_and(|m| m.is_file() && size.is_none_or(|s| s == m.len()))
}

async fn fetch_async(
    r: &Remote,
    cache: &Cache,
    items: &[(String, bool)],
    ctx: &Ctx<'_, '_>,
) -> Result<FetchReport> {
    let cat = if r.check_format(false).await? {
        r.catalog().await?
    } else {
        std::sync::Arc::new(Catalog::default())
    };
    let mut rep = FetchReport::default();

    // 1. Manifests of directory items.
    let dirs: Vec<&String> = items.iter().filter(|i| i.1).map(|i| &i.0).collect();
    let need: Vec<(String, Option<u64>)> = dirs
        .iter()
        .filter(|h| cache.read_manifest(h).is_err())
        .map(|h| ((*h).clone(), None))
        .collect();
    progress_reset(need.len() as u64);
    let got = fetch_objects(r, &cat, cache, need, ctx).await?;
    rep.fetched += got.stored;
    rep.bytes += got.bytes;
    let mut bad_dirs: HashSet<String> = HashSet::new();
    for (h, g) in got.problems {
        tally(&mut rep, &h, g, None);
        bad_dirs.insert(h);
    }

    // 2. Files: of file items and of every directory whose manifest is now local.
    let mut seen = packidx::NameSet::default();
    let mut wants: Vec<(String, Option<u64>)> = vec![];
    let mut want = |h: &str, size: Option<u64>, wants: &mut Vec<_>, rep: &mut FetchReport| {
        if let Some(raw) = packidx::raw(h) {
            if seen.insert(raw) {
                if local_ok(cache, h, size) {
                    rep.skipped += 1;
                } else {
                    wants.push((h.to_string(), size));
                }
            }
        }
    };
    for (h, is_dir) in items {
        if !*is_dir {
            want(h, None, &mut wants, &mut rep);
            continue;
        }
        if bad_dirs.contains(h) {
            continue;
        }
        match cache.read_manifest(h) {
            Ok(m) => {
                for e in m.entries.iter().filter(|e| e.link.is_none()) {
                    want(&e.hash, Some(e.size), &mut wants, &mut rep);
                }
            }
            // The bytes matched their name, so the manifest itself is malformed or unsafe:
            // refusing it here is what checkout would do later, naming it.
            Err(e) => return Err(e),
        }
    }
    drop(seen);
    progress_reset(wants.len() as u64);
    let got = fetch_objects(r, &cat, cache, wants, ctx).await?;
    rep.fetched += got.stored;
    rep.bytes += got.bytes;
    let problems: HashMap<String, Got> = got.problems.into_iter().collect();
    if !problems.is_empty() {
        name_problems(cache, &dirs, &bad_dirs, &problems, &mut rep);
    }
    rep.missing
        .sort_by(|a, b| (&a.hash, &a.path).cmp(&(&b.hash, &b.path)));
    rep.corrupt
        .sort_by(|a, b| (&a.hash, &a.path).cmp(&(&b.hash, &b.path)));
    Ok(rep)
}

/// Name the place of each problem file (a rare path: re-read the manifests).
fn name_problems(
    cache: &Cache,
    dirs: &[&String],
    bad_dirs: &HashSet<String>,
    problems: &HashMap<String, Got>,
    rep: &mut FetchReport,
) {
    let mut placed: HashSet<String> = HashSet::new();
    for h in dirs.iter().filter(|h| !bad_dirs.contains(**h)) {
        if let Ok(m) = cache.read_manifest(h) {
            place(&m, h, problems, &mut placed, rep);
        }
    }
    for (h, g) in problems {
        if !placed.contains(h) {
            push_problem(
                rep,
                *g,
                Problem {
                    hash: h.clone(),
                    dir: None,
                    path: None,
                },
            );
        }
    }
}

fn push_problem(rep: &mut FetchReport, g: Got, p: Problem) {
    match g {
        Got::Corrupt => rep.corrupt.push(p),
        _ => rep.missing.push(p),
    }
}

fn tally(rep: &mut FetchReport, h: &str, g: Got, dir: Option<&str>) {
    match g {
        Got::Stored(b) => {
            rep.fetched += 1;
            rep.bytes += b;
        }
        other => push_problem(
            rep,
            other,
            Problem {
                hash: h.to_string(),
                dir: dir.map(str::to_string),
                path: None,
            },
        ),
    }
}

fn place(
    m: &Manifest,
    dir: &str,
    problems: &HashMap<String, Got>,
    placed: &mut HashSet<String>,
    rep: &mut FetchReport,
) {
    for e in m.entries.iter().filter(|e| e.link.is_none()) {
        if let Some(g) = problems.get(&e.hash) {
            placed.insert(e.hash.clone());
            push_problem(
                rep,
                *g,
                Problem {
                    hash: e.hash.clone(),
                    dir: Some(dir.to_string()),
                    path: Some(e.path.clone()),
                },
            );
        }
    }
}

/// One request: a key (pack or loose object), an optional byte range, the objects in it.
struct Req {
    rel: String,
    range: Option<std::ops::Range<u64>>,
    wants: Vec<Want>,
}

/// The requests that fetch `wants`: pack members grouped per pack, neighbours coalesced into
/// range reads; objects needing no request (empty, or known absent) go straight to `out`.
fn plan(
    cat: &Catalog,
    cache: &Cache,
    wants: Vec<(String, Option<u64>)>,
    out: &mut Outcome,
) -> Result<Vec<Req>> {
    let mut by_pack: HashMap<u32, Vec<(u64, u64, String)>> = HashMap::new();
    let mut reqs: Vec<Req> = vec![];
    for (h, size) in wants {
        let raw = packidx::raw(&h).expect("validated hash");
        if let Some((_, loc)) = cat.get(&raw) {
            if loc.len == 0 {
                // Empty objects need no request (and some stores refuse empty ranges).
                let g = store_empty(cache, &h)?;
                out.add(h, g);
                continue;
            }
            by_pack
                .entry(loc.pack)
                .or_default()
                .push((loc.offset, loc.len, h));
        } else if size.is_some_and(|s| s < LOOSE_MIN) {
            // Format 1 keeps small objects in packs only: no request can find it.
            out.add(h, Got::Missing);
        } else {
            reqs.push(Req {
                rel: Remote::object_key(&h),
                range: None,
                wants: vec![Want {
                    hash: h,
                    offset: 0,
                    len: size,
                }],
            });
        }
    }
    for (pack, mut objs) in by_pack {
        objs.sort();
        let rel = format!("packs/{}.pack", cat.pack_id(pack));
        let mut cur: Option<Req> = None;
        for (offset, len, h) in objs {
            let w = Want {
                hash: h,
                offset,
                len: Some(len),
            };
            if let Some(c) = cur.as_mut() {
                let range = c.range.as_mut().expect("pack requests have ranges");
                if offset >= range.end
                    && offset - range.end <= GAP
                    && offset + len - range.start <= MAX_RANGE
                {
                    range.end = offset + len;
                    c.wants.push(w);
                    continue;
                }
                reqs.push(cur.take().expect("current request"));
            }
            cur = Some(Req {
                rel: rel.clone(),
                range: Some(offset..offset + len),
                wants: vec![w],
            });
        }
        reqs.extend(cur);
    }
    Ok(reqs)
}

/// Fetch `wants` (hash, size if known): stored objects are counted, the others named.
pub async fn fetch_objects(
    r: &Remote,
    cat: &Catalog,
    cache: &Cache,
    wants: Vec<(String, Option<u64>)>,
    ctx: &Ctx<'_, '_>,
) -> Result<Outcome> {
    let mut out = Outcome::default();
    let reqs = plan(cat, cache, wants, &mut out)?;
    progress_add(out.stored, out.bytes, 0);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<Outcome>>();
    let sink = Sink {
        placer: ctx.placer,
        spawn: ctx.spawn,
        budget: ctx.budget,
        tx,
    };
    // Outcomes are counted as they arrive (progress) while the requests run; the channel
    // closes when the requests are done and the last writer job has reported.
    let requests = async move {
        let sink = sink;
        let outcome = futures::stream::iter(reqs)
            .map(|q| {
                let sink = &sink;
                async move { transfer::download(r, &q.rel, q.range.clone(), &q.wants, sink).await }
            })
            .buffer_unordered(r.jobs)
            .try_collect::<Vec<()>>()
            .await;
        drop(sink);
        outcome
    };
    let count = async {
        let mut first_err = None;
        while let Some(o) = rx.recv().await {
            match o {
                Ok(o) => {
                    progress_add(o.stored, o.bytes, 0);
                    out.stored += o.stored;
                    out.bytes += o.bytes;
                    out.problems.extend(o.problems);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err
    };
    let (sent, written) = futures::join!(requests, count);
    sent?;
    if let Some(e) = written {
        return Err(e);
    }
    Ok(out)
}

fn store_empty(cache: &Cache, h: &str) -> Result<Got> {
    if h != crate::hash::hash_bytes(b"") {
        return Ok(Got::Corrupt);
    }
    write_object(cache, h, b"", "fetch_object_write")?;
    Ok(Got::Stored(0))
}

/// Whether the remote has each item (hash, `is_dir`, size if known): a directory counts only
/// with its manifest and every file. Uses the index set, and one HEAD per loose candidate.
pub fn contains(
    r: &Remote,
    cache_dir: &Path,
    items: &[(String, bool, Option<u64>)],
) -> Result<Vec<bool>> {
    let cache = Cache::new(cache_dir);
    r.block_on(async {
        if !r.check_format(false).await? {
            return Ok(vec![false; items.len()]);
        }
        let cat = r.catalog().await?;
        let has = |h: String, size: Option<u64>| {
            let cat = cat.clone();
            async move {
                let Some(raw) = packidx::raw(&h) else {
                    return Ok(false);
                };
                if cat.contains(&raw) {
                    return Ok(true);
                }
                if size.is_some_and(|s| s < LOOSE_MIN) {
                    return Ok(false);
                }
                r.exists(&Remote::object_key(&h)).await
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (h, is_dir, size) in items {
            if !*is_dir {
                out.push(has(h.clone(), *size).await?);
                continue;
            }
            let m = if let Ok(m) = cache.read_manifest(h) {
                m
            } else {
                let raw = packidx::raw(h);
                let loc = raw.and_then(|x| cat.get(&x).map(|(p, l)| (p.to_string(), l)));
                let got = match loc {
                    Some((pack, l)) => {
                        let rel = format!("packs/{pack}.pack");
                        transfer::get_verified(r, &rel, Some(l.offset..l.offset + l.len), h).await
                    }
                    None => transfer::get_verified(r, &Remote::object_key(h), None, h).await,
                };
                match got {
                    Ok(Some(bytes)) => {
                        if let Ok(m) = Manifest::parse(&bytes, Path::new(h)) {
                            m
                        } else {
                            out.push(false);
                            continue;
                        }
                    }
                    Ok(None) | Err(Error::Remote { .. }) => {
                        out.push(false);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            if !has(h.clone(), None).await? {
                out.push(false);
                continue;
            }
            let files: Vec<(String, Option<u64>)> = m
                .entries
                .iter()
                .filter(|e| e.link.is_none())
                .map(|e| (e.hash.clone(), Some(e.size)))
                .collect();
            let all: Vec<bool> = futures::stream::iter(files)
                .map(|(fh, s)| has(fh, s))
                .buffer_unordered(r.jobs)
                .try_collect()
                .await?;
            out.push(all.iter().all(|x| *x));
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::super::push::push;
    use super::super::testutil::*;
    use super::*;
    use crate::manifest;
    use object_store::ObjectStoreExt;

    fn dir_object(cache: &Path, files: &[(&str, &str, u64)]) -> String {
        let m = Manifest::from_entries(
            files
                .iter()
                .map(|(p, h, s)| manifest::Entry {
                    path: p.as_bytes().to_vec(),
                    hash: h.to_string(),
                    size: *s,
                    exec: false,
                    link: None,
                })
                .collect(),
        );
        let bytes = m.to_bytes();
        let h = crate::hash::hash_bytes(&bytes);
        let p = object(cache, &h);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
        h
    }

    #[test]
    fn push_then_fetch_a_directory_into_an_empty_cache() {
        let big = vec![9u8; usize::try_from(LOOSE_MIN).unwrap() + 5];
        let (dir, n) = cache_with(&[b"one", b"two", &big, b""]);
        let dh = dir_object(
            dir.path(),
            &[
                ("a", &n[0], 3),
                ("b/c", &n[1], 3),
                ("big", &n[2], big.len() as u64),
                ("empty", &n[3], 0),
            ],
        );
        let r = memory_remote();
        push(&r, dir.path(), &[(dh.clone(), true)]).unwrap();
        let fresh = tempfile::tempdir().unwrap();
        let r2 = Remote::with_store(&config("mem"), r.store.clone(), "pfx".into(), None);
        let rep = fetch(&r2, fresh.path(), &[(dh.clone(), true)], None).unwrap();
        assert!(rep.missing.is_empty() && rep.corrupt.is_empty(), "{rep:?}");
        assert_eq!(rep.fetched, 5);
        let m = Cache::new(fresh.path()).read_manifest(&dh).unwrap();
        for e in &m.entries {
            let p = object(fresh.path(), &e.hash);
            assert_eq!(crate::hash::hash_file(&p).unwrap(), e.hash);
        }
        // Again: nothing to do.
        let rep = fetch(&r2, fresh.path(), &[(dh, true)], None).unwrap();
        assert_eq!((rep.fetched, rep.skipped), (0, 4));
    }

    #[test]
    fn a_flipped_byte_in_a_pack_is_reported_with_its_path_and_not_stored() {
        let (d, n) = cache_with(&[b"alpha", b"beta"]);
        let dh = dir_object(d.path(), &[("x/alpha", &n[0], 5), ("x/beta", &n[1], 4)]);
        let r = memory_remote();
        push(&r, d.path(), &[(dh.clone(), true)]).unwrap();
        // Corrupt the pack holding the files (the manifest has its own pack, pushed later).
        let cat = r.block_on(r.catalog()).unwrap();
        let (pack, loc) = cat.get(&packidx::raw(&n[1]).unwrap()).unwrap();
        let rel = format!("packs/{pack}.pack");
        let mut data = r.block_on(r.get_small(&rel)).unwrap().unwrap().to_vec();
        data[usize::try_from(loc.offset).unwrap()] ^= 1;
        r.block_on(r.store.put(&r.key(&rel), data.into())).unwrap();
        let fresh = tempfile::tempdir().unwrap();
        let r2 = Remote::with_store(&config("mem"), r.store.clone(), "pfx".into(), None);
        let rep = fetch(&r2, fresh.path(), &[(dh.clone(), true)], None).unwrap();
        assert_eq!(rep.fetched, 2, "the manifest and the intact file");
        assert_eq!(
            rep.corrupt,
            vec![Problem {
                hash: n[1].clone(),
                dir: Some(dh),
                path: Some(b"x/beta".to_vec())
            }]
        );
        assert!(!object(fresh.path(), &n[1]).exists());
    }

    #[test]
    fn contains_checks_directories_file_by_file() {
        let (d, n) = cache_with(&[b"one", b"two"]);
        let dh = dir_object(d.path(), &[("a", &n[0], 3), ("b", &n[1], 3)]);
        let r = memory_remote();
        push(&r, d.path(), &[(n[0].clone(), false)]).unwrap();
        let items = vec![
            (n[0].clone(), false, Some(3)),
            (n[1].clone(), false, Some(3)),
            (dh.clone(), true, None),
        ];
        assert_eq!(
            contains(&r, d.path(), &items).unwrap(),
            vec![true, false, false]
        );
        push(&r, d.path(), &[(dh.clone(), true)]).unwrap();
        let empty = tempfile::tempdir().unwrap();
        let r2 = Remote::with_store(&config("mem"), r.store.clone(), "pfx".into(), None);
        assert_eq!(
            contains(&r2, empty.path(), &items).unwrap(),
            vec![true, true, true]
        );
    }

    #[test]
    fn a_truncated_local_object_is_replaced_by_the_verified_one() {
        let (d, n) = cache_with(&[b"complete content"]);
        let dh = dir_object(d.path(), &[("f", &n[0], 16)]);
        let r = memory_remote();
        push(&r, d.path(), &[(dh.clone(), true)]).unwrap();
        let fresh = tempfile::tempdir().unwrap();
        let p = object(fresh.path(), &n[0]);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"compl").unwrap();
        let rep = fetch(&r, fresh.path(), &[(dh, true)], None).unwrap();
        assert_eq!(rep.fetched, 2, "{rep:?}");
        assert_eq!(std::fs::read(&p).unwrap(), b"complete content");
    }

    #[test]
    fn a_corrupt_local_manifest_is_replaced_by_the_remote_one() {
        let (d, n) = cache_with(&[b"data"]);
        let dh = dir_object(d.path(), &[("f", &n[0], 4)]);
        let r = memory_remote();
        push(&r, d.path(), &[(dh.clone(), true)]).unwrap();
        let fresh = tempfile::tempdir().unwrap();
        let p = object(fresh.path(), &dh);
        let good = std::fs::read(object(d.path(), &dh)).unwrap();
        let mut bad = good.clone();
        let last = bad.len() - 2;
        bad[last] ^= 1;
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &bad).unwrap();
        let rep = fetch(&r, fresh.path(), &[(dh, true)], None).unwrap();
        assert!(rep.corrupt.is_empty() && rep.missing.is_empty(), "{rep:?}");
        assert_eq!(std::fs::read(&p).unwrap(), good);
    }

    #[test]
    fn objects_the_remote_lacks_are_missing() {
        let r = memory_remote();
        let fresh = tempfile::tempdir().unwrap();
        let h = crate::hash::hash_bytes(b"nowhere");
        let rep = fetch(
            &r,
            fresh.path(),
            &[(h.clone(), false), (h.clone(), true)],
            None,
        )
        .unwrap();
        assert_eq!(rep.missing.len(), 2);
        assert_eq!(rep.fetched, 0);
    }
}
