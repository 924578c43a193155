//! `pivot gc --remote`: roots records, the leased gc lock, and the collection itself
//! (docs/remote.md "Garbage collection"; layout in docs/formats.md "Remote storage").
//!
//! Safety rests on three rules. (1) A push writes its roots record (`roots/<clone>/…json`)
//! before it looks for existing objects, then checks the gc lock and stops if a live one is
//! there; a gc takes the lock before it lists the records. So every push either sees the lock
//! or has its record listed by the gc. (2) Nothing younger than the grace period (by the
//! store's own clock: the lock's `last_modified` is "now") is deleted, so objects a push has
//! uploaded but not yet named anywhere survive. (3) A rewritten pack and its index are
//! published before the old index is deleted, and the old index before the old pack, so no
//! index ever names a deleted pack.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStoreExt};

use super::packidx::{self, PackIndex};
use super::{catalog, multipart, transfer, Remote};
use crate::atomic::kill_point;
use crate::cache::Cache;
use crate::error::{Error, RemoteKind, Result};
use crate::manifest::Manifest;

pub const LOCK_KEY: &str = "gc.lock";

#[derive(Debug, Clone)]
pub struct GcOptions {
    pub grace_s: i64,
    /// Run-cache entries older than this are removed; younger ones are roots.
    pub runs_s: i64,
    /// Roots records at least this old (and older than the grace period) are removed when a
    /// newer complete record of the same clone supersedes them.
    pub records_s: i64,
    /// A pack whose dead bytes exceed this share of its size is rewritten.
    pub repack_ratio: f64,
    pub dry_run: bool,
    pub holder: String,
    pub lease_s: i64,
    /// Remove a lock held by someone else even if its lease has not expired.
    pub break_lock: bool,
}

#[derive(Debug, Default)]
pub struct GcReport {
    pub records: u64,
    pub records_removed: u64,
    pub runs_kept: u64,
    pub runs_removed: u64,
    pub objects_removed: u64,
    pub bytes_removed: u64,
    pub packs_removed: u64,
    pub packs_rewritten: u64,
    pub live: u64,
    pub young: u64,
    pub notes: Vec<String>,
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn pairs(items: &[(String, bool)]) -> Vec<serde_json::Value> {
    let mut sorted: Vec<&(String, bool)> = items.iter().collect();
    sorted.sort();
    sorted.dedup();
    sorted
        .iter()
        .map(|(h, d)| serde_json::json!([h, d]))
        .collect()
}

/// Write one roots record for a push from `clone`: `pushed` are the items this push publishes,
/// `roots` everything the clone needs (workspace and revisions); `complete` is false when some
/// revision could not be read (the record then supersedes no older one). Then look at the gc
/// lock: returns the holder of a live one (the push must stop), else None.
pub fn record_roots(
    r: &Remote,
    clone: &str,
    pushed: &[(String, bool)],
    roots: &[(String, bool)],
    complete: bool,
) -> Result<Option<String>> {
    if clone.is_empty() || !clone.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(r.error(RemoteKind::Other, format!("bad clone id {clone:?}")));
    }
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let doc = serde_json::json!({
        "clone": clone, "complete": complete, "created": now_s(),
        "pushed": pairs(pushed), "roots": pairs(roots),
    });
    let mut data = serde_json::to_vec(&doc).map_err(|e| r.error(RemoteKind::Other, e))?;
    data.push(b'\n');
    let rel = format!(
        "roots/{clone}/{ns:020}-{}.json",
        &crate::atomic::random_hex()[..8]
    );
    r.block_on(async {
        r.check_format(true).await?;
        r.put_once(&rel, data.into()).await?;
        r.make_durable(&rel)?;
        kill_point("remote_roots_put");
        Ok(read_lock(r).await?.and_then(|l| {
            (l.expires > now_s()).then(|| format!("{} (until {})", l.holder, l.expires))
        }))
    })
}

struct Lock {
    holder: String,
    token: String,
    expires: i64,
}

async fn read_lock(r: &Remote) -> Result<Option<Lock>> {
    let Some(data) = r.get_small(LOCK_KEY).await? else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_slice(&data).unwrap_or_default();
    Ok(Some(Lock {
        holder: v["holder"].as_str().unwrap_or("unknown").to_string(),
        token: v["token"].as_str().unwrap_or("").to_string(),
        // An unreadable lock counts as live until its key is a day old: never break blindly.
        expires: v["expires"].as_i64().unwrap_or(i64::MAX),
    }))
}

async fn list(r: &Remote, sub: &str) -> Result<Vec<ObjectMeta>> {
    r.store
        .list(Some(&r.key(sub)))
        .try_collect()
        .await
        .map_err(|e| r.map_err(&e, &format!("listing {sub}/")))
}

/// The key relative to the remote's prefix.
fn rel_of(r: &Remote, m: &ObjectMeta) -> String {
    let full = m.location.as_ref();
    let pfx = r.key("");
    let pfx = pfx.as_ref();
    if pfx.is_empty() {
        full.to_string()
    } else {
        full.strip_prefix(pfx)
            .map_or(full, |s| s.trim_start_matches('/'))
            .to_string()
    }
}

async fn delete(r: &Remote, rel: &str) -> Result<()> {
    match r.store.delete(&r.key(rel)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(r.map_err(&e, rel)),
    }
}

/// Take the gc lock; returns the store's "now" (the lock's own `last_modified`).
async fn take_lock(r: &Remote, o: &GcOptions) -> Result<(i64, String)> {
    let token = crate::atomic::random_hex();
    for attempt in 0..2 {
        let doc = serde_json::json!({
            "holder": o.holder, "token": token, "created": now_s(), "expires": now_s() + o.lease_s,
        });
        let data = serde_json::to_vec(&doc).map_err(|e| r.error(RemoteKind::Other, e))?;
        if r.put_once(LOCK_KEY, data.into()).await? {
            r.make_durable(LOCK_KEY)?;
            let meta = r
                .store
                .head(&r.key(LOCK_KEY))
                .await
                .map_err(|e| r.map_err(&e, LOCK_KEY))?;
            // Another breaker may have raced us: the lock must be ours.
            match read_lock(r).await? {
                Some(l) if l.token == token => {}
                _ => return Err(r.error(RemoteKind::Other, "lost the gc lock to another gc")),
            }
            return Ok((meta.last_modified.timestamp(), token));
        }
        let Some(l) = read_lock(r).await? else {
            continue;
        };
        if attempt == 0 && (o.break_lock || l.expires <= now_s()) {
            delete(r, LOCK_KEY).await?;
            continue;
        }
        return Err(r.error(
            RemoteKind::Other,
            format!(
                "a gc is already running on this remote: held by {} (lease until {}); \
                 retry later, or use --break-lock if that process is gone",
                l.holder, l.expires
            ),
        ));
    }
    Err(r.error(RemoteKind::Other, "could not take the gc lock"))
}

/// Collect the remote. `local_roots` are this clone's roots (hash, `is_dir`); manifests found
/// in `cache_dir` are used before the remote's copies.
pub fn gc(
    r: &Remote,
    cache_dir: &Path,
    local_roots: &[(String, bool)],
    o: &GcOptions,
) -> Result<GcReport> {
    r.block_on(async {
        if !r.check_format(false).await? {
            return Ok(GcReport::default());
        }
        if o.dry_run {
            return collect(r, cache_dir, local_roots, o, now_s(), None).await;
        }
        let (now, token) = take_lock(r, o).await?;
        let res = collect(r, cache_dir, local_roots, o, now, Some(now_s() + o.lease_s)).await;
        // Release only our own lock (a breaker may have taken it after our lease ran out).
        if let Some(l) = read_lock(r).await? {
            if l.token == token {
                delete(r, LOCK_KEY).await?;
            }
        }
        res
    })
}

fn lease_ok(r: &Remote, lease_end: Option<i64>) -> Result<()> {
    match lease_end {
        Some(end) if now_s() >= end => Err(r.error(
            RemoteKind::Other,
            "the gc lease expired before gc finished; stopped (run it again)",
        )),
        _ => Ok(()),
    }
}

/// Outputs named by a run-cache entry (`{"outs": {out: {"hash", "is_dir", "cache", …}}}`,
/// docs/formats.md "Run cache entries"); an unreadable entry names nothing, as locally.
fn run_outputs(data: &[u8]) -> Vec<(String, bool)> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return vec![];
    };
    let Some(m) = v["outs"].as_object() else {
        return vec![];
    };
    m.values()
        .filter(|e| e["cache"].as_bool().unwrap_or(true))
        .filter_map(|e| Some((e["hash"].as_str()?.to_string(), e["is_dir"].as_bool()?)))
        .collect()
}

#[allow(clippy::too_many_lines)] // one pass in the documented order
async fn collect(
    r: &Remote,
    cache_dir: &Path,
    local_roots: &[(String, bool)],
    o: &GcOptions,
    now: i64,
    lease_end: Option<i64>,
) -> Result<GcReport> {
    let mut rep = GcReport::default();
    let age = |m: &ObjectMeta| now - m.last_modified.timestamp();
    // (hash, is_dir, young remote record: its directory must be resolvable)
    let mut roots: Vec<(String, bool, bool)> = local_roots
        .iter()
        .map(|(h, d)| (h.clone(), *d, false))
        .collect();

    // 1. Roots records. Per clone, records older than the retention that are older than the
    // clone's newest complete record are superseded (it names all the clone needed then).
    let mut drop_records = vec![];
    let metas: Vec<ObjectMeta> = list(r, "roots")
        .await?
        .into_iter()
        // Exactly the names pushes write (lowercase `.json`).
        .filter(|m| {
            #[allow(clippy::case_sensitive_file_extension_comparisons)]
            rel_of(r, m).ends_with(".json")
        })
        .collect();
    let docs: Vec<(String, i64, serde_json::Value)> = futures::stream::iter(metas)
        .map(|m| async move {
            let rel = rel_of(r, &m);
            let data = r.get_small(&rel).await?.unwrap_or_default();
            let v: serde_json::Value = serde_json::from_slice(&data).map_err(|_| {
                r.error(
                    RemoteKind::Corrupt,
                    format!("{rel}: not a roots record; nothing removed"),
                )
            })?;
            Ok::<_, Error>((rel, age(&m), v))
        })
        .buffered(r.jobs)
        .try_collect()
        .await?;
    // Newest complete record per clone: the greatest name (names start with a timestamp).
    let mut newest: HashMap<&str, &str> = HashMap::new();
    for (rel, _, v) in &docs {
        if v["complete"].as_bool() == Some(true) {
            let clone = rel.split('/').nth(1).unwrap_or("");
            let e = newest.entry(clone).or_insert(rel.as_str());
            if rel.as_str() > *e {
                *e = rel.as_str();
            }
        }
    }
    for (rel, a, v) in &docs {
        let clone = rel.split('/').nth(1).unwrap_or("");
        let superseded = newest.get(clone).is_some_and(|n| rel.as_str() < *n);
        if superseded && *a >= o.records_s.max(o.grace_s) {
            drop_records.push(rel.clone());
            continue;
        }
        rep.records += 1;
        let young = *a < o.grace_s;
        for (field, strict) in [("pushed", young), ("roots", false)] {
            for it in v[field].as_array().into_iter().flatten() {
                match (it[0].as_str(), it[1].as_bool()) {
                    (Some(h), Some(d)) if crate::hash::is_hex64(h) => {
                        roots.push((h.to_string(), d, strict));
                    }
                    _ => {
                        return Err(r.error(
                            RemoteKind::Corrupt,
                            format!("{rel}: malformed root {it}; nothing removed"),
                        ))
                    }
                }
            }
        }
    }

    // 2. Run-cache entries: young ones are roots, old ones go (before any object).
    let mut old_runs = vec![];
    let run_metas = list(r, "runs").await?;
    let young_runs: Vec<String> = run_metas
        .iter()
        .filter_map(|m| {
            let rel = rel_of(r, m);
            if age(m) >= o.runs_s {
                old_runs.push(rel);
                None
            } else {
                Some(rel)
            }
        })
        .collect();
    let got: Vec<Option<bytes::Bytes>> = futures::stream::iter(young_runs)
        .map(|rel| async move { r.get_small(&rel).await })
        .buffered(r.jobs)
        .try_collect()
        .await?;
    for data in got.into_iter().flatten() {
        rep.runs_kept += 1;
        roots.extend(run_outputs(&data).into_iter().map(|(h, d)| (h, d, false)));
    }

    // 3. Index set (every listed index; a corrupt one still names its pack).
    let mut indexes: Vec<PackIndex> = vec![];
    let mut named_packs: HashSet<String> = HashSet::new();
    let mut index_age: HashMap<String, i64> = HashMap::new();
    let local = r.state_dir.as_ref().map(|d| d.join("index"));
    for m in list(r, "index").await? {
        let Some(id) = m.location.filename().and_then(packidx::id_of_name) else {
            continue;
        };
        named_packs.insert(id.to_string());
        index_age.insert(id.to_string(), age(&m));
        match catalog::load_one(r, id, local.as_deref()).await? {
            Ok(idx) => indexes.push(idx),
            Err(why) => rep.notes.push(format!("ignoring {why}")),
        }
    }
    let mut where_: HashMap<[u8; 32], (usize, u64, u64)> = HashMap::new();
    for (n, idx) in indexes.iter().enumerate() {
        for rec in &idx.records {
            where_.entry(rec.hash).or_insert((n, rec.offset, rec.len));
        }
    }

    // 4. The live set: roots and every file of every root directory.
    let cache = Cache::new(cache_dir);
    let mut live: HashSet<[u8; 32]> = HashSet::new();
    let mut dirs_done: HashSet<String> = HashSet::new();
    for (h, is_dir, young) in &roots {
        let Some(raw) = packidx::raw(h) else { continue };
        live.insert(raw);
        if !*is_dir || !dirs_done.insert(h.clone()) {
            continue;
        }
        let m = if let Ok(m) = cache.read_manifest(h) {
            Some(m)
        } else {
            let got = match where_.get(&raw) {
                Some(&(n, off, len)) => {
                    let rel = format!("packs/{}.pack", indexes[n].id);
                    transfer::get_verified(r, &rel, Some(off..off + len), h).await?
                }
                None => transfer::get_verified(r, &Remote::object_key(h), None, h).await?,
            };
            match got {
                Some(b) => Some(Manifest::parse(&b, Path::new(h))?),
                None => None,
            }
        };
        match m {
            Some(m) => {
                for e in m.entries.iter().filter(|e| e.link.is_none()) {
                    if let Some(x) = packidx::raw(&e.hash) {
                        live.insert(x);
                    }
                }
            }
            None if *young => {
                return Err(r.error(
                    RemoteKind::Other,
                    format!(
                        "directory {h} of a recent push is not on the remote yet \
                         (a push in progress?); nothing removed, retry later"
                    ),
                ))
            }
            None => rep.notes.push(format!(
                "directory {h} is not on the remote; its files are not roots"
            )),
        }
    }
    kill_point("remote_gc_roots");

    // 5. Remove: records past their retention, old run entries, then packs, then loose objects.
    let del = |rel: String, point: &'static str| async move {
        lease_ok(r, lease_end)?;
        delete(r, &rel).await?;
        kill_point(point);
        Ok::<_, Error>(())
    };
    rep.records_removed = drop_records.len() as u64;
    rep.runs_removed = old_runs.len() as u64;
    if !o.dry_run {
        for rel in drop_records {
            del(rel, "remote_gc_record").await?;
        }
        for rel in old_runs {
            del(rel, "remote_gc_run").await?;
        }
    }

    // Packs.
    let mut pack_age: HashMap<String, (i64, u64)> = HashMap::new();
    for m in list(r, "packs").await? {
        if let Some(id) = m
            .location
            .filename()
            .and_then(|f| f.strip_suffix(".pack"))
            .filter(|id| crate::hash::is_hex64(id))
        {
            pack_age.insert(id.to_string(), (age(&m), m.size));
        }
    }
    for (id, &(a, size)) in &pack_age {
        if !named_packs.contains(id) && a >= o.grace_s {
            // A pack without an index: a push killed before its index; nobody can read it.
            rep.packs_removed += 1;
            rep.bytes_removed += size;
            if !o.dry_run {
                del(format!("packs/{id}.pack"), "remote_gc_pack_delete").await?;
            }
        }
    }
    for idx in &indexes {
        let Some(&(pa, _)) = pack_age.get(&idx.id) else {
            rep.notes.push(format!(
                "index/{}.idx names a missing pack; left alone",
                idx.id
            ));
            continue;
        };
        let n_live: Vec<_> = idx
            .records
            .iter()
            .filter(|x| live.contains(&x.hash))
            .copied()
            .collect();
        rep.live += n_live.len() as u64;
        let dead_bytes: u64 = idx
            .records
            .iter()
            .filter(|x| !live.contains(&x.hash))
            .map(|x| x.len)
            .sum();
        let dead_n = (idx.records.len() - n_live.len()) as u64;
        let young = pa < o.grace_s || index_age.get(&idx.id).is_none_or(|&a| a < o.grace_s);
        if dead_n == 0 {
            continue;
        }
        if young {
            rep.young += dead_n;
            continue;
        }
        #[allow(clippy::cast_precision_loss)] // a ratio
        let ratio = dead_bytes as f64 / idx.pack_size.max(1) as f64;
        if !n_live.is_empty() && ratio <= o.repack_ratio {
            continue;
        }
        rep.objects_removed += dead_n;
        rep.bytes_removed += dead_bytes;
        if n_live.is_empty() {
            rep.packs_removed += 1;
        } else {
            rep.packs_rewritten += 1;
        }
        if o.dry_run {
            continue;
        }
        if !n_live.is_empty() {
            lease_ok(r, lease_end)?;
            rewrite(r, idx, n_live).await?;
        }
        del(format!("index/{}.idx", idx.id), "remote_gc_index_delete").await?;
        del(format!("packs/{}.pack", idx.id), "remote_gc_pack_delete").await?;
    }

    // Loose objects.
    for m in list(r, "objects").await? {
        let rel = rel_of(r, &m);
        let mut parts = rel.rsplit('/');
        let (Some(tail), Some(shard)) = (parts.next(), parts.next()) else {
            continue;
        };
        let h = format!("{shard}{tail}");
        let Some(raw) = packidx::raw(&h) else {
            continue;
        };
        if live.contains(&raw) {
            rep.live += 1;
            continue;
        }
        if age(&m) < o.grace_s {
            rep.young += 1;
            continue;
        }
        rep.objects_removed += 1;
        rep.bytes_removed += m.size;
        if !o.dry_run {
            del(rel, "remote_gc_object").await?;
        }
    }

    // Staged uploads a killed push left behind (`multipart`): older than the grace period,
    // nobody is still writing them.
    let mut staged = vec![];
    if let Some(root) = &r.local_root {
        // The directory backend hides its own partial files (`name#N`) from listings.
        if let Ok(dir) = std::fs::read_dir(root.join(multipart::STAGING)) {
            for e in dir.flatten() {
                let old = e
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .is_some_and(|t| {
                        let t = t
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                        now - t >= o.grace_s
                    });
                if old {
                    staged.push(e.path());
                }
            }
        }
        if !o.dry_run {
            for p in &staged {
                lease_ok(r, lease_end)?;
                let _ = std::fs::remove_file(p);
            }
        }
    } else {
        for m in list(r, multipart::STAGING).await? {
            if age(&m) >= o.grace_s {
                let rel = rel_of(r, &m);
                staged.push(rel.clone().into());
                if !o.dry_run {
                    del(rel, "remote_gc_staged").await?;
                }
            }
        }
    }
    let verb = if o.dry_run { "would remove" } else { "removed" };
    if !staged.is_empty() {
        rep.notes.push(format!(
            "{verb} {} staged upload(s) a killed push left in {}/",
            staged.len(),
            multipart::STAGING
        ));
    }
    // S3: multipart uploads a killed push left open (their parts are stored and billed, but
    // invisible to listings). Those older than the grace period belong to no live push.
    let stale: Vec<_> = multipart::open_uploads(r)
        .await?
        .into_iter()
        .filter(|u| now - u.initiated >= o.grace_s)
        .collect();
    if !stale.is_empty() {
        if !o.dry_run {
            for u in &stale {
                lease_ok(r, lease_end)?;
                multipart::abort_open(r, u).await?;
            }
        }
        rep.notes.push(format!(
            "{verb} {} unfinished multipart upload(s) a killed push left open",
            stale.len()
        ));
    }
    Ok(rep)
}

/// Publish a pack of `keep` (in their old order) and its index, each verified as read.
async fn rewrite(r: &Remote, old: &PackIndex, mut keep: Vec<packidx::Record>) -> Result<()> {
    keep.sort_by_key(|x| x.offset);
    let rel_old = format!("packs/{}.pack", old.id);
    let mut data: Vec<u8> = Vec::new();
    for rec in &keep {
        let h = crate::hash::hex(&blake3::Hash::from(rec.hash));
        let got = transfer::get_verified(r, &rel_old, Some(rec.offset..rec.offset + rec.len), &h)
            .await?
            .ok_or_else(|| r.error(RemoteKind::Other, format!("{rel_old} vanished")))?;
        data.extend_from_slice(&got);
    }
    let order: Vec<([u8; 32], u64)> = keep.iter().map(|x| (x.hash, x.len)).collect();
    let (idx_bytes, id, _) = packidx::build(&order);
    let pack = format!("packs/{id}.pack");
    r.put_once(&pack, data.into()).await?;
    r.make_durable(&pack)?;
    kill_point("remote_gc_pack_put");
    let index = format!("index/{id}.idx");
    r.put_once(&index, idx_bytes.into()).await?;
    r.make_durable(&index)?;
    kill_point("remote_gc_index_put");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn opts() -> GcOptions {
        GcOptions {
            grace_s: 0,
            runs_s: 1 << 40,
            records_s: 1 << 40,
            repack_ratio: 0.5,
            dry_run: false,
            holder: "test".into(),
            lease_s: 3600,
            break_lock: false,
        }
    }

    fn keys(r: &Remote, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = r
            .block_on(list(r, sub))
            .unwrap()
            .iter()
            .map(|m| rel_of(r, m))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_mostly_dead_pack_is_rewritten_and_a_roots_record_keeps_its_objects() {
        let r = memory_remote();
        let (cache, names) = cache_with(&[b"keep-me", b"dead-one-long-bytes", b"in-record"]);
        let items: Vec<(String, bool)> = names.iter().map(|h| (h.clone(), false)).collect();
        super::super::push::push(&r, cache.path(), &items).unwrap();
        let old_idx = keys(&r, "index");
        assert!(
            record_roots(&r, "0a", &[], &[(names[2].clone(), false)], true)
                .unwrap()
                .is_none()
        );
        let empty = tempfile::tempdir().unwrap();
        let rep = gc(&r, empty.path(), &[(names[0].clone(), false)], &opts()).unwrap();
        assert_eq!((rep.objects_removed, rep.packs_rewritten), (1, 1));
        let new_idx = keys(&r, "index");
        assert_eq!(new_idx.len(), 1);
        assert_ne!(new_idx, old_idx);
        assert!(keys(&r, "").iter().all(|k| k != LOCK_KEY), "lock released");
        // Both survivors are readable from the new pack; the dead one is gone.
        let fresh = tempfile::tempdir().unwrap();
        let r2 = Remote::with_store(&config("mem"), r.store.clone(), "pfx".into(), None);
        let f = super::super::fetch::fetch(&r2, fresh.path(), &items, None).unwrap();
        assert_eq!(f.fetched, 2);
        assert_eq!(f.missing.len(), 1);
        assert_eq!(f.missing[0].hash, names[1]);
    }

    #[test]
    fn a_held_lock_refuses_a_second_gc_and_an_expired_one_is_broken() {
        let r = memory_remote();
        r.block_on(r.check_format(true)).unwrap();
        let lock = serde_json::json!({"holder": "alice@host pid 1", "token": "x", "expires": now_s() + 600});
        r.block_on(r.put_once(LOCK_KEY, serde_json::to_vec(&lock).unwrap().into()))
            .unwrap();
        let e = gc(&r, Path::new("/nonexistent"), &[], &opts()).unwrap_err();
        assert!(e.to_string().contains("alice@host pid 1"), "{e}");
        let holder = record_roots(&r, "c1", &[], &[], true).unwrap();
        assert!(holder.unwrap().contains("alice"), "a push sees the gc");
        r.block_on(delete(&r, LOCK_KEY)).unwrap();
        let stale = serde_json::json!({"holder": "bob", "token": "y", "expires": now_s() - 1});
        r.block_on(r.put_once(LOCK_KEY, serde_json::to_vec(&stale).unwrap().into()))
            .unwrap();
        gc(&r, Path::new("/nonexistent"), &[], &opts()).unwrap();
    }

    #[test]
    fn staged_uploads_a_killed_push_left_are_removed_after_the_grace_period() {
        let r = memory_remote();
        r.block_on(r.check_format(true)).unwrap();
        let stale = format!("{}/0123abcd", multipart::STAGING);
        r.block_on(r.put_once(&stale, "partial".into())).unwrap();
        let young = GcOptions {
            grace_s: 3600,
            ..opts()
        };
        let rep = gc(&r, Path::new("/nonexistent"), &[], &young).unwrap();
        assert_eq!(keys(&r, multipart::STAGING).len(), 1, "{:?}", rep.notes);
        let rep = gc(&r, Path::new("/nonexistent"), &[], &opts()).unwrap();
        assert!(keys(&r, multipart::STAGING).is_empty());
        assert!(
            rep.notes
                .iter()
                .any(|n| n.contains("removed 1 staged upload")),
            "{:?}",
            rep.notes
        );
    }

    #[test]
    fn a_directory_remote_removes_the_partial_files_it_hides_from_listings() {
        let d = tempfile::tempdir().unwrap();
        let cfg = super::super::RemoteConfig {
            name: "dir".into(),
            url: d.path().to_str().unwrap().into(),
            jobs: 2,
            ..Default::default()
        };
        let r = Remote::open(&cfg).unwrap();
        r.block_on(r.check_format(true)).unwrap();
        let tmp = d.path().join(multipart::STAGING);
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("0123abcd#1"), b"partial").unwrap();
        gc(&r, Path::new("/nonexistent"), &[], &opts()).unwrap();
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    }

    #[test]
    fn young_objects_survive_the_grace_period() {
        let r = memory_remote();
        let (cache, names) = cache_with(&[b"a", b"b"]);
        let items: Vec<(String, bool)> = names.iter().map(|h| (h.clone(), false)).collect();
        super::super::push::push(&r, cache.path(), &items).unwrap();
        let o = GcOptions {
            grace_s: 3600,
            ..opts()
        };
        let rep = gc(&r, cache.path(), &[], &o).unwrap();
        assert_eq!((rep.objects_removed, rep.young), (0, 2));
    }

    #[test]
    fn an_old_record_is_superseded_only_by_a_newer_complete_one_of_its_clone() {
        let r = memory_remote();
        let (cache, names) = cache_with(&[b"one", b"two", b"three"]);
        let items: Vec<(String, bool)> = names.iter().map(|h| (h.clone(), false)).collect();
        super::super::push::push(&r, cache.path(), &items).unwrap();
        let root = |i: usize| vec![(names[i].clone(), false)];
        record_roots(&r, "0a", &root(0), &root(0), true).unwrap();
        record_roots(&r, "0b", &root(1), &root(1), true).unwrap();
        record_roots(&r, "0a", &root(2), &root(2), false).unwrap();
        let o = GcOptions {
            records_s: 0,
            repack_ratio: 0.2, // "one" is 3 of the pack's 11 bytes
            ..opts()
        };
        let empty = tempfile::tempdir().unwrap();
        // 0a's newest record is incomplete: nothing of 0a is superseded.
        let rep = gc(&r, empty.path(), &[], &o).unwrap();
        assert_eq!(
            (rep.records, rep.records_removed, rep.objects_removed),
            (3, 0, 0)
        );
        record_roots(&r, "0a", &root(2), &root(2), true).unwrap();
        let rep = gc(&r, empty.path(), &[], &o).unwrap();
        assert_eq!((rep.records, rep.records_removed), (2, 2));
        assert_eq!(
            rep.objects_removed, 1,
            "only the object of 0a's old records went"
        );
        assert_eq!(keys(&r, "roots").len(), 2);
    }

    #[test]
    fn run_outputs_are_read_from_entries() {
        let e = br#"{"outs": {"o": {"hash": "ab", "is_dir": true, "cache": true},
            "m": {"hash": "cd", "is_dir": false, "cache": false}}}"#;
        assert_eq!(run_outputs(e), vec![("ab".to_string(), true)]);
        assert!(run_outputs(b"nope").is_empty());
    }
}
