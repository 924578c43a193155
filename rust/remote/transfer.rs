//! Streaming transfers between the local cache and one remote key, in bounded memory.
//!
//! Upload: a blocking reader concatenates cache objects into fixed-size parts, re-hashing
//! every object as it is read (a mismatch aborts the upload, naming the object), and hands the
//! parts over a one-slot channel to a multipart upload with a few parts in flight. Download: one
//! (range) GET is cut into objects as the bytes arrive, each streamed into a temp file in the
//! cache while hashed and renamed into place only when its hash equals its name.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use object_store::{GetOptions, GetRange, ObjectStoreExt, PutPayload};

use super::{Remote, PART};
use crate::atomic;
use crate::cache::insert::place_temp;
use crate::cache::link::{self, OBJECT_MODE};
use crate::cache::Cache;
use crate::error::{Error, IoContext, RemoteKind, Result};
use crate::hash::read_full;

/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// The outcome of a spawned part upload.
fn joined(
    r: &Remote,
    rel: &str,
    res: std::result::Result<object_store::Result<()>, tokio::task::JoinError>,
) -> Result<()> {
    match res {
        Ok(Ok(())) => Ok(()),
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
    let key = r.key(rel);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let reader = tokio::task::spawn_blocking(move || {
        read_concat(&sources, PART, |b| tx.blocking_send(b).is_ok())
    });
    let mut up = r
        .store
        .put_multipart(&key)
        .await
        .map_err(|e| r.map_err(&e, rel))?;
    let sent: Result<()> = async {
        let mut inflight = FuturesUnordered::new();
        while let Some(chunk) = rx.recv().await {
            while inflight.len() >= PARTS_IN_FLIGHT {
                if let Some(res) = inflight.next().await {
                    joined(r, rel, res)?;
                }
            }
            let permit = r.parts.clone().acquire_owned().await;
            let part = up.put_part(PutPayload::from(chunk));
            // A task of its own: the part progresses (and frees its permit) while this upload
            // waits for the next permit; polled only from here, uploads would hold permits
            // while waiting for more and deadlock.
            inflight.push(tokio::spawn(async move {
                let res = part.await;
                drop(permit);
                res
            }));
        }
        while let Some(res) = inflight.next().await {
            joined(r, rel, res)?;
        }
        Ok(())
    }
    .await;
    drop(rx);
    let read = reader
        .await
        .map_err(|e| r.error(RemoteKind::Other, format!("reader failed: {e}")));
    let outcome = match (read, sent) {
        // A corrupt source wins: it names the object.
        (Ok(Err(e)) | Err(e), _) | (Ok(Ok(())), Err(e)) => Err(e),
        (Ok(Ok(())), Ok(())) => Ok(()),
    };
    match outcome {
        Ok(()) => {
            up.complete().await.map_err(|e| r.map_err(&e, rel))?;
            Ok(true)
        }
        Err(e) => {
            let _ = up.abort().await;
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

/// A cache object being written: temp file in `files/`, hashed as written. Dropped without
/// being placed (a verification failure, a write error such as a full disk, or the transfer
/// abandoned because another one failed) it removes its temp file, so a failed fetch leaves
/// neither a partial object nor the space it took.
struct Incoming {
    tmp: PathBuf,
    file: Option<File>,
    hasher: blake3::Hasher,
    written: u64,
    /// The temp was renamed into the cache: nothing left to remove.
    placed: bool,
}

impl Incoming {
    fn new(cache: &Cache) -> Result<Incoming> {
        let tmp = atomic::temp_path_in(&cache.files);
        let file = link::create_new(&tmp, OBJECT_MODE).at(&tmp)?;
        Ok(Incoming {
            tmp,
            file: Some(file),
            hasher: blake3::Hasher::new(),
            written: 0,
            placed: false,
        })
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.hasher.update(b);
        self.written += b.len() as u64;
        let file = self.file.as_mut().expect("open until finished");
        file.write_all(b).at(&self.tmp)
    }

    /// Verify and move into place as the cache's insert does (`place_temp`: an intact object
    /// already there is kept, a damaged one replaced); a mismatch reports Corrupt (the temp
    /// goes with `self`).
    fn finish(mut self, cache: &Cache, hash: &str) -> Result<Got> {
        drop(self.file.take());
        if self.hasher.finalize().to_hex().as_str() != hash {
            return Ok(Got::Corrupt);
        }
        let res = place_temp(cache, &self.tmp, hash, self.written, "fetch_object_write");
        self.placed = matches!(res, Ok(true));
        res.map(|_| Got::Stored(self.written))
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.placed {
            drop(self.file.take());
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// GET `rel` (bytes `range`, or all of it) and store the `wants` it holds (sorted by offset,
/// non-overlapping) into `cache`. Returns one outcome per want, in order.
pub async fn download(
    r: &Remote,
    rel: &str,
    range: Option<std::ops::Range<u64>>,
    wants: &[Want],
    cache: &Cache,
) -> Result<Vec<Got>> {
    let base = range.as_ref().map_or(0, |x| x.start);
    let opts = GetOptions {
        range: range.clone().map(GetRange::Bounded),
        ..Default::default()
    };
    let mut out = vec![Got::Missing; wants.len()];
    let res = match r.store.get_opts(&r.key(rel), opts).await {
        Ok(res) => res,
        Err(object_store::Error::NotFound { ref source, .. })
            if !format!("{source:?}").contains("NoSuchBucket") =>
        {
            return Ok(out);
        }
        Err(e) => return Err(r.map_err(&e, rel)),
    };
    let mut stream = res.into_stream();
    let mut pos = base; // offset (in the key) of the next byte of the stream
    let mut i = 0; // current want
    let mut cur: Option<Incoming> = None;
    let end_of = |w: &Want| w.len.map_or(u64::MAX, |l| w.offset + l);
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return Err(r.map_err(&e, rel)), // `cur` removes its temp
        };
        let mut data: &[u8] = &chunk;
        while !data.is_empty() && i < wants.len() {
            let w = &wants[i];
            if pos < w.offset {
                // Gap between wanted objects of a coalesced range: skip it.
                let skip =
                    usize::try_from(w.offset - pos).map_or(data.len(), |g| g.min(data.len()));
                data = &data[skip..];
                pos += skip as u64;
                continue;
            }
            if cur.is_none() {
                cur = Some(Incoming::new(cache)?);
            }
            let take = usize::try_from(end_of(w) - pos).map_or(data.len(), |g| g.min(data.len()));
            cur.as_mut().map(|c| c.write(&data[..take])).transpose()?;
            data = &data[take..];
            pos += take as u64;
            if pos == end_of(w) {
                let inc = cur.take().expect("object in progress");
                out[i] = inc.finish(cache, &w.hash)?;
                i += 1;
            }
        }
        if i >= wants.len() {
            break;
        }
    }
    if let Some(inc) = cur.take() {
        // A loose object of unknown size ends with the stream; anything else is short.
        if i < wants.len() && wants[i].len.is_none() {
            out[i] = inc.finish(cache, &wants[i].hash)?;
        } else {
            drop(inc);
            if i < wants.len() {
                out[i] = Got::Corrupt; // truncated on the remote
            }
        }
    }
    Ok(out)
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
    fn an_incoming_object_not_placed_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("files")).unwrap();
        let cache = Cache::new(d.path());
        // Abandoned mid-way (a write error, or the transfer dropped).
        let mut inc = Incoming::new(&cache).unwrap();
        inc.write(b"partial").unwrap();
        drop(inc);
        // Bytes that do not hash to the name.
        let mut inc = Incoming::new(&cache).unwrap();
        inc.write(b"abc").unwrap();
        let other = crate::hash::hash_bytes(b"other");
        assert_eq!(inc.finish(&cache, &other).unwrap(), Got::Corrupt);
        // Placed: the object is there, no temp.
        let h = crate::hash::hash_bytes(b"abc");
        let mut inc = Incoming::new(&cache).unwrap();
        inc.write(b"abc").unwrap();
        assert_eq!(inc.finish(&cache, &h).unwrap(), Got::Stored(3));
        assert_eq!(std::fs::read(object(d.path(), &h)).unwrap(), b"abc");
        let temps: Vec<_> = std::fs::read_dir(d.path().join("files"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".pvtmp"))
            .collect();
        assert!(temps.is_empty(), "{temps:?}");
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
        let got = r
            .block_on(download(
                &r,
                "packs/x.pack",
                None,
                &wants,
                &Cache::new(fresh.path()),
            ))
            .unwrap();
        assert_eq!(got, vec![Got::Stored(big.len() as u64), Got::Stored(9)]);
        let p = object(fresh.path(), &names[1]);
        assert_eq!(std::fs::read(p).unwrap(), b"small one");
        // A range that only covers the second object.
        let fresh2 = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fresh2.path().join("files")).unwrap();
        let start = big.len() as u64;
        let got = r
            .block_on(download(
                &r,
                "packs/x.pack",
                Some(start..start + 9),
                &wants[1..],
                &Cache::new(fresh2.path()),
            ))
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
        let got = r
            .block_on(download(
                &r,
                "objects/x",
                None,
                &wants,
                &Cache::new(fresh.path()),
            ))
            .unwrap();
        assert_eq!(got, vec![Got::Corrupt]);
        assert!(!object(fresh.path(), &h).exists());
        let left: Vec<_> = std::fs::read_dir(fresh.path().join("files"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "no temp left behind");
        let missing = r
            .block_on(download(
                &r,
                "objects/none",
                None,
                &wants,
                &Cache::new(fresh.path()),
            ))
            .unwrap();
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
