//! The remote's index set: which object lives in which pack, at which offset.
//!
//! Loaded once per command by listing `index/` (the indexes only, never the data) and reading
//! each index, from the local copy under `<state_dir>/index/` when there is a valid one (indexes
//! are write-once, so a copy never goes stale) or from the remote otherwise. Only names found
//! in this listing are used: the local copies are a cache, never a source of truth.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};

use super::packidx::{self, PackIndex};
use super::Remote;
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub pack: u32,
    pub offset: u64,
    pub len: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Catalog {
    packs: Vec<String>,
    map: HashMap<[u8; 32], Loc, packidx::NameBuild>,
    /// Indexes that failed their check ("<key>: <why>"): ignored, so their objects count as
    /// absent and a push publishes them again in a new pack.
    pub bad: Vec<String>,
}

impl Catalog {
    pub fn add(&mut self, idx: PackIndex) {
        // Pack numbers are u32 to keep the per-object map small; 4·10^9 packs of 64 MiB
        // are far beyond any remote.
        let n = u32::try_from(self.packs.len()).expect("fewer than 2^32 packs");
        self.packs.push(idx.id);
        self.map.reserve(idx.records.len());
        for r in idx.records {
            self.map.entry(r.hash).or_insert(Loc {
                pack: n,
                offset: r.offset,
                len: r.len,
            });
        }
    }

    pub fn get(&self, h: &[u8; 32]) -> Option<(&str, Loc)> {
        self.map
            .get(h)
            .map(|l| (self.packs[l.pack as usize].as_str(), *l))
    }

    pub fn contains(&self, h: &[u8; 32]) -> bool {
        self.map.contains_key(h)
    }

    pub fn pack_id(&self, n: u32) -> &str {
        &self.packs[n as usize]
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub async fn load(r: &Remote) -> Result<Catalog> {
        let prefix = r.key("index");
        let metas: Vec<_> = r
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| r.map_err(&e, "listing index/"))?;
        let mut ids: Vec<String> = metas
            .iter()
            .filter_map(|m| m.location.filename().and_then(packidx::id_of_name))
            .map(str::to_string)
            .collect();
        ids.sort();
        ids.dedup();
        let local = r.state_dir.as_ref().map(|d| d.join("index"));
        let loaded: Vec<std::result::Result<PackIndex, String>> = futures::stream::iter(ids)
            .map(|id| {
                let local = local.clone();
                async move { load_one(r, &id, local.as_deref()).await }
            })
            .buffer_unordered(r.jobs)
            .try_collect()
            .await?;
        let mut c = Catalog::default();
        for idx in loaded {
            match idx {
                Ok(idx) => c.add(idx),
                Err(why) => c.bad.push(why),
            }
        }
        Ok(c)
    }
}

pub(super) async fn load_one(
    r: &Remote,
    id: &str,
    local: Option<&std::path::Path>,
) -> Result<std::result::Result<PackIndex, String>> {
    if let Some(dir) = local {
        if let Ok(data) = std::fs::read(dir.join(format!("{id}.idx"))) {
            if let Ok(idx) = packidx::parse(&data, id) {
                return Ok(Ok(idx));
            }
        }
    }
    let rel = format!("index/{id}.idx");
    let Some(data) = r.get_small(&rel).await? else {
        return Ok(Err(format!("{rel}: vanished while listing")));
    };
    let idx = match packidx::parse(&data, id) {
        Ok(idx) => idx,
        Err(m) => return Ok(Err(format!("{rel}: {m}"))),
    };
    if let Some(dir) = local {
        // Only a time saver: a failure to keep the copy is not an error.
        if std::fs::create_dir_all(dir).is_ok() {
            let _ = crate::atomic::write_atomic(&dir.join(format!("{id}.idx")), &data, None);
        }
    }
    Ok(Ok(idx))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::memory_remote;
    use super::*;

    #[test]
    fn loads_listed_indexes_and_caches_them_locally() {
        let state = tempfile::tempdir().unwrap();
        let mut r = memory_remote();
        r.state_dir = Some(state.path().to_path_buf());
        let (bytes, id, _) = packidx::build(&[([7; 32], 10), ([3; 32], 5)]);
        r.block_on(r.put_once(&format!("index/{id}.idx"), bytes.into()))
            .unwrap();
        let c = r.block_on(Catalog::load(&r)).unwrap();
        assert_eq!(c.len(), 2);
        let (pack, loc) = c.get(&[3; 32]).unwrap();
        assert_eq!((pack, loc.offset, loc.len), (id.as_str(), 10, 5));
        assert!(state.path().join(format!("index/{id}.idx")).is_file());
    }

    #[test]
    fn a_corrupt_index_is_ignored_and_reported_by_name() {
        let r = memory_remote();
        let (mut bytes, id, _) = packidx::build(&[([7; 32], 10)]);
        bytes[33] ^= 1;
        r.block_on(r.put_once(&format!("index/{id}.idx"), bytes.into()))
            .unwrap();
        let c = r.block_on(Catalog::load(&r)).unwrap();
        assert!(c.is_empty());
        assert!(
            c.bad[0].contains(&id) && c.bad[0].contains("corrupt"),
            "{:?}",
            c.bad
        );
    }

    #[test]
    fn a_stale_local_copy_is_not_trusted_without_a_listing() {
        let state = tempfile::tempdir().unwrap();
        let mut r = memory_remote();
        r.state_dir = Some(state.path().to_path_buf());
        let (bytes, id, _) = packidx::build(&[([7; 32], 10)]);
        std::fs::create_dir_all(state.path().join("index")).unwrap();
        std::fs::write(state.path().join(format!("index/{id}.idx")), bytes).unwrap();
        let c = r.block_on(Catalog::load(&r)).unwrap();
        assert!(
            c.is_empty(),
            "an index the remote does not list is not used"
        );
    }
}
