//! Run-cache entries on the remote: `runs/<2>/<62>`, the local entry's bytes, create-only.
//!
//! Pushed after the objects they name (the caller pushes outputs first), so a reader that finds
//! an entry finds its outputs. Their content cannot be checked against their name (the name is
//! the key of the inputs); a fetched entry is only a candidate, used by the engine when every
//! object it names is in the cache, as for local entries (docs/formats.md "Run cache entries").

use std::path::Path;

use futures::{StreamExt, TryStreamExt};

use super::Remote;
use crate::atomic::{self, kill_point};
use crate::error::{Error, IoContext, RemoteKind, Result};

/// Largest entry accepted from a remote (the local reader's limit).
const MAX_ENTRY: usize = 64 << 20;

fn local_path(runs_dir: &Path, key: &str) -> std::path::PathBuf {
    runs_dir.join(&key[..2]).join(&key[2..])
}

fn check_keys(runs_dir: &Path, keys: &[String]) -> Result<()> {
    match keys.iter().find(|k| !crate::hash::is_hex64(k)) {
        Some(k) => Err(Error::Invalid {
            path: runs_dir.into(),
            msg: format!("{k:?} is not a 64-hex run key"),
        }),
        None => Ok(()),
    }
}

/// Upload the local entries `keys` the remote lacks. Returns (uploaded, already there,
/// absent locally).
pub fn push(r: &Remote, runs_dir: &Path, keys: &[String]) -> Result<(u64, u64, Vec<String>)> {
    check_keys(runs_dir, keys)?;
    r.block_on(async {
        r.check_format(true).await?;
        let res: Vec<(u8, String)> = futures::stream::iter(keys.iter().cloned())
            .map(|k| async move {
                let p = local_path(runs_dir, &k);
                let data = match std::fs::read(&p) {
                    Ok(d) => d,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((2, k)),
                    Err(e) => return Err(Error::io(p, e)),
                };
                let rel = Remote::run_key(&k);
                if r.exists(&rel).await? {
                    return Ok((1, k));
                }
                let new = r.put_once(&rel, data.into()).await?;
                r.make_durable(&rel)?;
                kill_point("remote_runs_put");
                Ok((u8::from(!new), k))
            })
            .buffer_unordered(r.jobs)
            .try_collect()
            .await?;
        let mut out = (0, 0, vec![]);
        for (what, k) in res {
            match what {
                0 => out.0 += 1,
                1 => out.1 += 1,
                _ => out.2.push(k),
            }
        }
        out.2.sort();
        Ok(out)
    })
}

/// Download the entries `keys` the remote has into `runs_dir` (durably). Returns, per key,
/// whether it is now present locally.
pub fn fetch(r: &Remote, runs_dir: &Path, keys: &[String]) -> Result<Vec<bool>> {
    check_keys(runs_dir, keys)?;
    r.block_on(async {
        if !r.check_format(false).await? {
            return Ok(vec![false; keys.len()]);
        }
        futures::stream::iter(keys.iter().cloned())
            .map(|k| async move {
                let p = local_path(runs_dir, &k);
                if p.is_file() {
                    return Ok(true);
                }
                let rel = Remote::run_key(&k);
                let Some(data) = r.get_small(&rel).await? else {
                    return Ok(false);
                };
                if data.len() > MAX_ENTRY {
                    return Err(r.error(RemoteKind::Corrupt, format!("{rel}: entry too large")));
                }
                let shard = atomic::parent_dir(&p);
                std::fs::create_dir_all(shard).at(shard)?;
                atomic::write_atomic(&p, &data, Some("runcache_write"))?;
                Ok(true)
            })
            .buffered(r.jobs)
            .try_collect()
            .await
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn entries_round_trip_and_are_never_overwritten() {
        let local = tempfile::tempdir().unwrap();
        let k = "ab".repeat(32);
        let p = local_path(local.path(), &k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"{\"outs\":{},\"stage\":\"s\"}").unwrap();
        let absent = "cd".repeat(32);
        let r = memory_remote();
        let (up, there, miss) = push(&r, local.path(), &[k.clone(), absent.clone()]).unwrap();
        assert_eq!((up, there, miss), (1, 0, vec![absent.clone()]));
        std::fs::write(&p, b"changed").unwrap();
        assert_eq!(
            push(&r, local.path(), std::slice::from_ref(&k)).unwrap().1,
            1
        );
        let other = tempfile::tempdir().unwrap();
        let got = fetch(&r, other.path(), &[k.clone(), absent]).unwrap();
        assert_eq!(got, vec![true, false]);
        assert_eq!(
            std::fs::read(local_path(other.path(), &k)).unwrap(),
            b"{\"outs\":{},\"stage\":\"s\"}"
        );
    }
}
