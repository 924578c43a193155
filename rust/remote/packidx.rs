//! Pack index files (`index/<id>.idx`, docs/formats.md "Remote storage").
//!
//! Binary, little-endian: magic `PVTPIDX\0`, version u32 (1), reserved u32 (0), record count
//! u64, pack size u64, then the records sorted by object hash, 48 bytes each (hash [32], offset
//! u64, length u64), then blake3 of all preceding bytes. That trailing hash is the pack id: the
//! index is `index/<id>.idx` and its pack `packs/<id>.pack`. Since the records name the pack's
//! content exactly (object names are content hashes), the id is known before a byte of the pack
//! is uploaded, and two writers packing the same objects the same way produce the same names.

pub const MAGIC: &[u8; 8] = b"PVTPIDX\0";
pub const VERSION: u32 = 1;
const HEADER: usize = 32;
const RECORD: usize = 48;

/// One object inside a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub hash: [u8; 32],
    pub offset: u64,
    pub len: u64,
}

/// A parsed, validated index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackIndex {
    pub id: String,
    pub pack_size: u64,
    pub records: Vec<Record>,
}

/// Canonical index bytes for objects laid out in `order` (hash, len), concatenated in that order.
/// Returns (bytes, id, records in pack order with their offsets).
pub fn build(order: &[([u8; 32], u64)]) -> (Vec<u8>, String, Vec<Record>) {
    let mut offset = 0u64;
    let mut in_pack = Vec::with_capacity(order.len());
    for &(hash, len) in order {
        in_pack.push(Record { hash, offset, len });
        offset += len;
    }
    let mut sorted = in_pack.clone();
    sorted.sort_by_key(|r| r.hash);
    let mut out = Vec::with_capacity(HEADER + RECORD * sorted.len() + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(sorted.len() as u64).to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    for r in &sorted {
        out.extend_from_slice(&r.hash);
        out.extend_from_slice(&r.offset.to_le_bytes());
        out.extend_from_slice(&r.len.to_le_bytes());
    }
    let id = blake3::hash(&out);
    out.extend_from_slice(id.as_bytes());
    (out, id.to_hex().to_string(), in_pack)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parse and validate index bytes; `expect_id` (the file's name) must equal the trailing hash.
pub fn parse(data: &[u8], expect_id: &str) -> Result<PackIndex, String> {
    if data.len() < HEADER + 32 {
        return Err("truncated index".into());
    }
    if &data[..8] != MAGIC {
        return Err("not a pack index (bad magic)".into());
    }
    let version = u32::from_le_bytes(data[8..12].try_into().unwrap_or_default());
    if version != VERSION {
        return Err(format!(
            "pack index version {version}; this pivot understands {VERSION}"
        ));
    }
    let (body, trailer) = data.split_at(data.len() - 32);
    let id = blake3::hash(body);
    if id.as_bytes() != trailer {
        return Err("index is corrupt (trailing hash does not match)".into());
    }
    let id = id.to_hex().to_string();
    if id != expect_id {
        return Err(format!("index content is {id}, not its name"));
    }
    let count = u64_at(body, 16);
    let pack_size = u64_at(body, 24);
    if (body.len() - HEADER) as u64 != count.saturating_mul(RECORD as u64) {
        return Err("record count does not match the index size".into());
    }
    // `count` matches the index's size (checked above), so it fits a usize.
    let mut records = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut prev: Option<[u8; 32]> = None;
    for rec in body[HEADER..].chunks_exact(RECORD) {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&rec[..32]);
        let r = Record {
            hash,
            offset: u64_at(rec, 32),
            len: u64_at(rec, 40),
        };
        if prev.is_some_and(|p| p >= hash) {
            return Err("records not sorted or duplicated".into());
        }
        if r.offset
            .checked_add(r.len)
            .is_none_or(|end| end > pack_size)
        {
            return Err("record points past the end of the pack".into());
        }
        prev = Some(hash);
        records.push(r);
    }
    Ok(PackIndex {
        id,
        pack_size,
        records,
    })
}

/// `<64 hex>.idx` -> the id, for names found when listing `index/`.
pub fn id_of_name(name: &str) -> Option<&str> {
    let id = name.strip_suffix(".idx")?;
    crate::hash::is_hex64(id).then_some(id)
}

/// Raw 32-byte hash of a 64-hex name (None if malformed: not 64 lowercase hex digits).
pub fn raw(hex: &str) -> Option<[u8; 32]> {
    crate::hash::raw_from_hex(hex.as_bytes())
}

/// Hasher for maps keyed by raw object names: the names are blake3 outputs, uniformly
/// distributed, so their first 8 bytes are already a good hash (`SipHash` of 32 bytes cost
/// more than the rest of a no-change push's per-object work). Not for keys an adversary picks
/// to collide: object names are content hashes.
#[derive(Default, Clone, Copy)]
pub struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut a = [0u8; 8];
        let n = bytes.len().min(8);
        a[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(a);
    }
    #[inline]
    fn write_usize(&mut self, _len: usize) {
        // The length prefix of a slice: every key is 32 bytes.
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type NameBuild = std::hash::BuildHasherDefault<NameHasher>;
/// A set of raw object names.
pub type NameSet = std::collections::HashSet<[u8; 32], NameBuild>;

/// Objects of `order` that appear twice (a caller bug; packs never hold duplicates).
#[cfg(test)]
pub fn has_duplicates(order: &[([u8; 32], u64)]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(order.len());
    order.iter().any(|(h, _)| !seen.insert(*h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> [u8; 32] {
        [b; 32]
    }

    #[test]
    fn round_trip_sorted_with_offsets_in_pack_order() {
        let (bytes, id, in_pack) = build(&[(h(9), 5), (h(1), 3), (h(4), 0)]);
        assert_eq!(in_pack[1].offset, 5);
        let idx = parse(&bytes, &id).unwrap();
        assert_eq!(idx.pack_size, 8);
        let hashes: Vec<_> = idx.records.iter().map(|r| r.hash[0]).collect();
        assert_eq!(hashes, vec![1, 4, 9]);
        assert_eq!(idx.records[2].offset, 0);
        assert_eq!(idx.records[0].offset, 5);
    }

    #[test]
    fn deterministic_name() {
        let a = build(&[(h(1), 3), (h(2), 4)]);
        let b = build(&[(h(1), 3), (h(2), 4)]);
        assert_eq!(a.1, b.1);
        let c = build(&[(h(2), 4), (h(1), 3)]);
        assert_ne!(a.1, c.1, "a different layout is a different pack");
    }

    #[test]
    fn corruption_and_wrong_names_are_refused() {
        let (bytes, id, _) = build(&[(h(1), 3), (h(2), 4)]);
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert!(parse(&flipped, &id).unwrap_err().contains("corrupt"));
        assert!(parse(&bytes[..bytes.len() - 1], &id).is_err());
        assert!(parse(&bytes, &"0".repeat(64))
            .unwrap_err()
            .contains("not its name"));
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(parse(&v2, &id).is_err());
    }

    #[test]
    fn names_and_hex() {
        let x = "ab".repeat(32);
        assert_eq!(id_of_name(&format!("{x}.idx")), Some(x.as_str()));
        assert_eq!(id_of_name("foo.idx"), None);
        assert_eq!(crate::hash::hex(&blake3::Hash::from(raw(&x).unwrap())), x);
        assert!(has_duplicates(&[(h(1), 1), (h(1), 1)]));
        assert_eq!(raw(&"AB".repeat(32)), None, "names are lowercase");
        assert_eq!(raw(&"ab".repeat(31)), None);
        assert_eq!(raw(&format!("{}g", "a".repeat(63))), None);
    }

    #[test]
    fn name_sets_tell_names_apart() {
        let mut s = NameSet::default();
        let a = raw(&crate::hash::hash_bytes(b"a")).unwrap();
        let b = raw(&crate::hash::hash_bytes(b"b")).unwrap();
        assert!(s.insert(a) && s.insert(b) && !s.insert(a));
        assert!(s.contains(&a) && s.contains(&b) && s.len() == 2);
    }
}
