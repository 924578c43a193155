//! Streaming transfers between the local cache and one remote key, in bounded memory.
//!
//! Upload: a blocking reader concatenates cache objects into fixed-size parts, re-hashing
//! every object as it is read (a mismatch aborts the upload, naming the object), and hands the
//! parts over a one-slot channel to a multipart upload with a few parts in flight. Download: one
//! (range) GET is cut into objects as the bytes arrive; small ones are handed in batches to the
//! fetch's writer threads, big ones stream into their file; every object is hashed and named
//! in the cache only when its hash equals its name (`place`).

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use object_store::multipart::PartId;
use object_store::{GetOptions, GetRange, PutPayload};

use super::multipart::Upload;
use super::place::{Pending, Placer};
use super::{Remote, PART};
use crate::error::{Error, IoContext, RemoteKind, Result};
use crate::hash::read_full;

/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// The outcome of a spawned part upload: its (index, S3 part id), if the store has ids.
fn joined<T>(
    r: &Remote,
    rel: &str,
    res: std::result::Result<object_store::Result<T>, tokio::task::JoinError>,
) -> Result<T> {
    match res {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(r.map_err(&e, rel)),
        Err(e) => Err(r.error(RemoteKind::Other, format!("{rel}: part upload failed: {e}"))),
    }
}

/// One cache object to upload.
#[derive(Debug, Clone)]
pub struct Source {
    pub hash: String,
    pub path: PathBuf,
    pub len: u64,
}

/// Read `sources` in order, re-hashing each, and emit the concatenation in `part`-byte chunks
/// (the last may be shorter). `emit` returning false stops early (the receiver is gone).
pub fn read_concat(
    sources: &[Source],
    part: usize,
    mut emit: impl FnMut(Bytes) -> bool,
) -> Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(part);
    for s in sources {
        let mut f = File::open(&s.path).at(&s.path)?;
        let mut hasher = blake3::Hasher::new();
        let mut left = s.len;
        while left > 0 {
            if buf.len() == part
                && !emit(Bytes::from(std::mem::replace(
                    &mut buf,
                    Vec::with_capacity(part),
                )))
            {
                return Ok(());
            }
            let room =
                usize::try_from(left).map_or(part - buf.len(), |l| (part - buf.len()).min(l));
            let start = buf.len();
            buf.resize(start + room, 0);
            let n = read_full(&mut f, &mut buf[start..]).at(&s.path)?;
            buf.truncate(start + n);
            hasher.update(&buf[start..]);
            if n < room {
                break; // shorter than its recorded size: the hash check below names it
            }
            left -= n as u64;
        }
        let mut extra = [0u8; 1];
        let longer = f.read(&mut extra).at(&s.path)? > 0;
        if left > 0 || longer || hasher.finalize().to_hex().as_str() != s.hash {
            return Err(Error::CacheCorrupt {
                path: s.path.clone(),
                hash: s.hash.clone(),
            });
        }
    }
    if !buf.is_empty() {
        emit(Bytes::from(buf));
    }
    Ok(())
}

/// Upload the concatenation of `sources` (`total` bytes) as the new key `rel`, create-only.
/// Returns false when the key already existed (same name, same bytes: nothing to do).
pub async fn upload(r: &Remote, rel: &str, sources: Vec<Source>, total: u64) -> Result<bool> {
    if r.exists(rel).await? {
        return Ok(false);
    }
    if total <= PART as u64 {
        let data = tokio::task::spawn_blocking(move || {
            let mut all = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
            read_concat(&sources, PART.max(1), |b| {
                all.extend_from_slice(&b);
                true
            })?;
            Ok::<_, Error>(all)
        })
        .await
        .map_err(|e| r.error(RemoteKind::Other, format!("reader failed: {e}")))??;
        return r.put_once(rel, Bytes::from(data)).await;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let reader = tokio::task::spawn_blocking(move || {
        read_concat(&sources, PART, |b| tx.blocking_send(b).is_ok())
    });
    let mut up = Upload::start(r, rel).await?;
    let sent: Result<Vec<PartId>> = async {
        let mut inflight = FuturesUnordered::new();
        let mut ids: Vec<(usize, PartId)> = vec![];
        let mut idx = 0;
        while let Some(chunk) = rx.recv().await {
            while inflight.len() >= PARTS_IN_FLIGHT {
                if let Some(res) = inflight.next().await {
                    ids.extend(joined(r, rel, res)?);
                }
            }
            let permit = r.parts.clone().acquire_owned().await;
            let part = up.put_part(idx, PutPayload::from(chunk));
            // A task of its own: the part progresses (and frees its permit) while this upload
            // waits for the next permit; polled only from here, uploads would hold permits
            // while waiting for more and deadlock.
            inflight.push(tokio::spawn(async move {
                let res = part.await;
                drop(permit);
                res.map(|id| id.map(|id| (idx, id)))
            }));
            idx += 1;
        }
        while let Some(res) = inflight.next().await {
            ids.extend(joined(r, rel, res)?);
        }
        ids.sort_by_key(|(i, _)| *i);
        Ok(ids.into_iter().map(|(_, id)| id).collect())
    }
    .await;
    drop(rx);
    let read = reader
        .await
        .map_err(|e| r.error(RemoteKind::Other, format!("reader failed: {e}")));
    let outcome = match (read, sent) {
        // A corrupt source wins: it names the object.
        (Ok(Err(e)) | Err(e), _) | (Ok(Ok(())), Err(e)) => Err(e),
        (Ok(Ok(())), Ok(ids)) => Ok(ids),
    };
    match outcome {
        Ok(ids) => up.finish(r, rel, ids).await,
        Err(e) => {
            up.abort(r).await;
            Err(e)
        }
    }
}

/// One object expected inside a downloaded key, at `offset` (from the key's start), `len`
/// bytes long; `len == None` for a loose object of unknown size (the whole key).
#[derive(Debug, Clone)]
pub struct Want {
    pub hash: String,
    pub offset: u64,
    pub len: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Got {
    /// Verified and in the cache (bytes).
    Stored(u64),
    Corrupt,
    Missing,
}

/// Objects up to this size are cut out of a response into memory and written by the fetch's
/// writer threads; bigger ones stream into their file as the bytes arrive.
pub const INLINE_MAX: u64 = 1 << 20;
/// In-memory objects are handed to a writer in batches of about this many bytes.
const BATCH: usize = 1 << 20;

/// Work handed off the network thread.
pub type Job<'s> = Box<dyn FnOnce() + Send + 's>;

/// What a batch of objects came to: stored objects are only counted; the others are named.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stored: u64,
    pub bytes: u64,
    pub problems: Vec<(String, Got)>,
}

impl Outcome {
    pub fn add(&mut self, hash: String, g: Got) {
        match g {
            Got::Stored(b) => {
                self.stored += 1;
                self.bytes += b;
            }
            other => self.problems.push((hash, other)),
        }
    }
}

/// Where `download` puts what it fetched: verified objects go into the cache through `placer`
/// on the jobs `spawn` runs (the fetch's writer threads; inline in tests); every outcome is
/// sent on `tx`, which closes once the last job holding it ends.
pub struct Sink<'a, 'j> {
    pub placer: &'j Placer<'j>,
    pub spawn: &'a (dyn Fn(Job<'j>) + Sync),
    /// Bytes cut out of responses and not yet written (bounds a fetch's memory).
    pub budget: &'j tokio::sync::Semaphore,
    pub tx: tokio::sync::mpsc::UnboundedSender<Result<Outcome>>,
}

/// Bytes a fetch may hold in memory waiting for its writers (`Sink::budget`).
pub const BUDGET: usize = 64 << 20;

impl Sink<'_, '_> {
    fn send(&self, o: Result<Outcome>) {
        // The receiver outlives every sender (it drains them all); a send cannot fail.
        let _ = self.tx.send(o);
    }

    fn one(&self, hash: String, g: Got) {
        let mut o = Outcome::default();
        o.add(hash, g);
        self.send(Ok(o));
    }

    /// Hand a batch of complete in-memory objects to a writer (waits for memory budget).
    async fn flush(&self, batch: &mut Vec<(String, Bytes)>, bytes: &mut usize) {
        if batch.is_empty() {
            return;
        }
        let n = u32::try_from((*bytes).min(BUDGET)).unwrap_or(u32::MAX);
        let permit = self.budget.acquire_many(n).await.ok();
        let items = std::mem::take(batch);
        *bytes = 0;
        let placer = self.placer;
        let tx = self.tx.clone();
        (self.spawn)(Box::new(move || {
            let _permit = permit;
            let mut o = Outcome::default();
            let mut res = Ok(());
            for (h, data) in items {
                match placer.store(&h, &data) {
                    Ok(g) => o.add(h, g),
                    Err(e) => {
                        res = Err(e);
                        break;
                    }
                }
            }
            let _ = tx.send(res.map(|()| o));
        }));
    }
}

/// An object being cut out of a response.
enum Cur {
    Mem(bytes::BytesMut),
    File(Box<Pending>),
}

/// Cuts one response into the objects it holds, in order.
struct Cutter<'w> {
    wants: &'w [Want],
    pos: u64, // offset (in the key) of the next byte of the stream
    i: usize, // current want
    cur: Option<Cur>,
    batch: Vec<(String, Bytes)>,
    batch_bytes: usize,
}

impl Cutter<'_> {
    fn done(&self) -> bool {
        self.i >= self.wants.len()
    }

    /// Take the objects (or parts of them) in `chunk`.
    async fn feed(&mut self, chunk: &Bytes, sink: &Sink<'_, '_>) -> Result<()> {
        let inline = |w: &Want| w.len.is_some_and(|l| l <= INLINE_MAX);
        let mut at = 0usize;
        while at < chunk.len() && !self.done() {
            let w = &self.wants[self.i];
            let left = chunk.len() - at;
            if self.pos < w.offset {
                // Gap between wanted objects of a coalesced range: skip it.
                let skip = usize::try_from(w.offset - self.pos).map_or(left, |g| g.min(left));
                at += skip;
                self.pos += skip as u64;
                continue;
            }
            let end = w.len.map_or(u64::MAX, |l| w.offset + l);
            let take = usize::try_from(end - self.pos).map_or(left, |g| g.min(left));
            let piece = chunk.slice(at..at + take);
            at += take;
            self.pos += take as u64;
            match self.cur.as_mut() {
                None if self.pos == end && inline(w) => {
                    // The whole object is in this chunk: no copy.
                    self.batch_bytes += piece.len();
                    self.batch.push((w.hash.clone(), piece));
                }
                None if inline(w) => {
                    let cap = usize::try_from(w.len.unwrap_or(0)).unwrap_or(0);
                    let mut m = bytes::BytesMut::with_capacity(cap);
                    m.extend_from_slice(&piece);
                    self.cur = Some(Cur::Mem(m));
                }
                None => {
                    let mut p = sink.placer.begin()?;
                    p.write(&piece)?;
                    self.cur = Some(Cur::File(Box::new(p)));
                }
                Some(Cur::Mem(m)) => m.extend_from_slice(&piece),
                Some(Cur::File(p)) => p.write(&piece)?,
            }
            if self.pos == end {
                match self.cur.take() {
                    Some(Cur::Mem(m)) => {
                        self.batch_bytes += m.len();
                        self.batch.push((w.hash.clone(), m.freeze()));
                    }
                    Some(Cur::File(p)) => {
                        sink.one(w.hash.clone(), sink.placer.finish(*p, &w.hash)?);
                    }
                    None => {}
                }
                self.i += 1;
            }
            if self.batch_bytes >= BATCH {
                sink.flush(&mut self.batch, &mut self.batch_bytes).await;
            }
        }
        Ok(())
    }

    /// The stream ended (or failed): hand over what is complete and settle the rest.
    async fn end(mut self, sink: &Sink<'_, '_>, failed: bool) -> Result<()> {
        sink.flush(&mut self.batch, &mut self.batch_bytes).await;
        let mut rest = Outcome::default();
        let mut i = self.i;
        match self.cur.take() {
            // A loose object of unknown size ends with the stream.
            Some(Cur::File(p)) if !failed && self.wants[i].len.is_none() => {
                let h = &self.wants[i].hash;
                rest.add(h.clone(), sink.placer.finish(*p, h)?);
                i += 1;
            }
            Some(c) => {
                if let Cur::File(p) = c {
                    drop(p); // a named temp goes with it
                }
                if failed {
                    return Ok(());
                }
                rest.add(self.wants[i].hash.clone(), Got::Corrupt); // truncated on the remote
                i += 1;
            }
            None if failed => return Ok(()),
            None => {}
        }
        for w in &self.wants[i.min(self.wants.len())..] {
            rest.add(w.hash.clone(), Got::Missing); // past the end of what the remote holds
        }
        if rest.stored + rest.problems.len() as u64 > 0 {
            sink.send(Ok(rest));
        }
        Ok(())
    }
}

/// GET `rel` (bytes `range`, or all of it) and store the `wants` it holds (sorted by offset,
/// non-overlapping) into the cache through `sink`: one outcome per want is sent on `sink.tx`.
/// Only a failed request (after the client's retries) is an error.
pub async fn download(
    r: &Remote,
    rel: &str,
    range: Option<std::ops::Range<u64>>,
    wants: &[Want],
    sink: &Sink<'_, '_>,
) -> Result<()> {
    let base = range.as_ref().map_or(0, |x| x.start);
    let opts = GetOptions {
        range: range.clone().map(GetRange::Bounded),
        ..Default::default()
    };
    let res = match r.store.get_opts(&r.key(rel), opts).await {
        Ok(res) => res,
        Err(object_store::Error::NotFound { ref source, .. })
            if !format!("{source:?}").contains("NoSuchBucket") =>
        {
            let mut o = Outcome::default();
            for w in wants {
                o.add(w.hash.clone(), Got::Missing);
            }
            sink.send(Ok(o));
            return Ok(());
        }
        Err(e) => return Err(r.map_err(&e, rel)),
    };
    let mut stream = res.into_stream();
    let mut cut = Cutter {
        wants,
        pos: base,
        i: 0,
        cur: None,
        batch: vec![],
        batch_bytes: 0,
    };
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => cut.feed(&c, sink).await?,
            Err(e) => {
                cut.end(sink, true).await?;
                return Err(r.map_err(&e, rel));
            }
        }
        if cut.done() {
            break;
        }
    }
    cut.end(sink, false).await
}

/// Fetch a small key whole into memory and check it hashes to `hash` (manifests for
/// `contains`); None when absent, Err(Corrupt) when the bytes do not match.
pub async fn get_verified(
    r: &Remote,
    rel: &str,
    range: Option<std::ops::Range<u64>>,
    hash: &str,
) -> Result<Option<Bytes>> {
    let opts = GetOptions {
        range: range.map(GetRange::Bounded),
        ..Default::default()
    };
    let data = match r.store.get_opts(&r.key(rel), opts).await {
        Ok(res) => res.bytes().await.map_err(|e| r.map_err(&e, rel))?,
        Err(object_store::Error::NotFound { ref source, .. })
            if !format!("{source:?}").contains("NoSuchBucket") =>
        {
            return Ok(None)
        }
        Err(e) => return Err(r.map_err(&e, rel)),
    };
    if blake3::hash(&data).to_hex().as_str() != hash {
        return Err(r.error(RemoteKind::Corrupt, format!("object {hash} is corrupt")));
    }
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::cache::Cache;

    /// `download` into `cache` with writes inline; one outcome per want, in order.
    fn download_into(
        r: &Remote,
        rel: &str,
        range: Option<std::ops::Range<u64>>,
        wants: &[Want],
        cache: &Cache,
    ) -> Result<Vec<Got>> {
        let placer = Placer::new(cache, None);
        let spawn = |j: Job<'_>| j();
        let budget = tokio::sync::Semaphore::new(BUDGET);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sink = Sink {
            placer: &placer,
            spawn: &spawn,
            budget: &budget,
            tx,
        };
        r.block_on(download(r, rel, range, wants, &sink))?;
        drop(sink);
        let mut problems = std::collections::HashMap::new();
        while let Some(o) = rx.blocking_recv() {
            problems.extend(o?.problems);
        }
        Ok(wants
            .iter()
            .map(|w| {
                problems.get(&w.hash).copied().unwrap_or_else(|| {
                    let p = cache.object_path(&w.hash).unwrap();
                    Got::Stored(std::fs::metadata(p).unwrap().len())
                })
            })
            .collect())
    }

    fn sources(cache: &std::path::Path, names: &[String]) -> Vec<Source> {
        names
            .iter()
            .map(|h| {
                let path = object(cache, h);
                let len = std::fs::metadata(&path).unwrap().len();
                Source {
                    hash: h.clone(),
                    path,
                    len,
                }
            })
            .collect()
    }

    #[test]
    fn read_concat_cuts_fixed_parts_and_checks_hashes() {
        let (d, names) = cache_with(&[b"hello", b"world!!", b""]);
        let src = sources(d.path(), &names);
        let mut parts = vec![];
        read_concat(&src, 4, |b| {
            parts.push(b);
            true
        })
        .unwrap();
        let lens: Vec<_> = parts.iter().map(Bytes::len).collect();
        assert_eq!(lens, vec![4, 4, 4]);
        assert_eq!(parts.concat(), b"helloworld!!");
        // Flip a byte of the second object: the read names it.
        let p = &src[1].path;
        std::fs::write(p, b"world!?").unwrap();
        let e = read_concat(&src, 4, |_| true).unwrap_err();
        assert!(e.to_string().contains(&names[1]), "{e}");
    }

    #[test]
    fn multipart_upload_round_trips_and_download_verifies() {
        let big: Vec<u8> = (0..(PART + PART / 2 + 7))
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let (d, names) = cache_with(&[&big, b"small one"]);
        let r = memory_remote();
        let src = sources(d.path(), &names);
        let total = src.iter().map(|s| s.len).sum();
        assert!(r.block_on(upload(&r, "packs/x.pack", src, total)).unwrap());
        // Fetch both out of the one key into a fresh cache.
        let fresh = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fresh.path().join("files")).unwrap();
        let wants = vec![
            Want {
                hash: names[0].clone(),
                offset: 0,
                len: Some(big.len() as u64),
            },
            Want {
                hash: names[1].clone(),
                offset: big.len() as u64,
                len: Some(9),
            },
        ];
        let got =
            download_into(&r, "packs/x.pack", None, &wants, &Cache::new(fresh.path())).unwrap();
        assert_eq!(got, vec![Got::Stored(big.len() as u64), Got::Stored(9)]);
        let p = object(fresh.path(), &names[1]);
        assert_eq!(std::fs::read(p).unwrap(), b"small one");
        // A range that only covers the second object.
        let fresh2 = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fresh2.path().join("files")).unwrap();
        let start = big.len() as u64;
        let got = download_into(
            &r,
            "packs/x.pack",
            Some(start..start + 9),
            &wants[1..],
            &Cache::new(fresh2.path()),
        )
        .unwrap();
        assert_eq!(got, vec![Got::Stored(9)]);
    }

    #[test]
    fn concurrent_multipart_uploads_share_few_part_permits_without_deadlock() {
        let objs: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; PART * 3 + 1]).collect();
        let refs: Vec<&[u8]> = objs.iter().map(Vec::as_slice).collect();
        let (d, names) = cache_with(&refs);
        let mut r = memory_remote();
        r.parts = std::sync::Arc::new(tokio::sync::Semaphore::new(2));
        let all = futures::future::try_join_all(names.iter().map(|h| {
            let src = sources(d.path(), std::slice::from_ref(h));
            let rel = format!("objects/{h}");
            let r = &r;
            async move { upload(r, &rel, src, (PART * 3 + 1) as u64).await }
        }));
        let done = r
            .block_on(async { tokio::time::timeout(std::time::Duration::from_mins(1), all).await })
            .expect("no deadlock")
            .unwrap();
        assert_eq!(done, vec![true; 3]);
    }

    #[test]
    fn a_corrupt_remote_object_never_enters_the_cache() {
        let r = memory_remote();
        let h = crate::hash::hash_bytes(b"good");
        r.block_on(r.put_once("objects/x", Bytes::from_static(b"evil")))
            .unwrap();
        let fresh = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fresh.path().join("files")).unwrap();
        let wants = [Want {
            hash: h.clone(),
            offset: 0,
            len: None,
        }];
        let got = download_into(&r, "objects/x", None, &wants, &Cache::new(fresh.path())).unwrap();
        assert_eq!(got, vec![Got::Corrupt]);
        assert!(!object(fresh.path(), &h).exists());
        let left: Vec<_> = std::fs::read_dir(fresh.path().join("files"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "no temp left behind");
        let missing =
            download_into(&r, "objects/none", None, &wants, &Cache::new(fresh.path())).unwrap();
        assert_eq!(missing, vec![Got::Missing]);
    }

    #[test]
    fn an_upload_of_a_corrupt_source_is_aborted_and_publishes_nothing() {
        let big: Vec<u8> = vec![7u8; PART * 2 + 3];
        let (d, names) = cache_with(&[&big]);
        let mut src = sources(d.path(), &names);
        src[0].hash = "0".repeat(64);
        let r = memory_remote();
        let e = r
            .block_on(upload(&r, "objects/y", src, big.len() as u64))
            .unwrap_err();
        assert!(e.to_string().contains(&"0".repeat(64)), "{e}");
        assert!(!r.block_on(r.exists("objects/y")).unwrap());
    }
}
