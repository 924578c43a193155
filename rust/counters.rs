//! Process-wide debug counters (files read to hash them, stat-index hits, index rebuilds), read
//! by tests through `_native._debug_stats()`. Relaxed atomics: counts only, they order nothing.

use std::sync::atomic::{AtomicU64, Ordering};

static FILES_READ: AtomicU64 = AtomicU64::new(0);
static BYTES_READ: AtomicU64 = AtomicU64::new(0);
static INDEX_HITS: AtomicU64 = AtomicU64::new(0);
static INDEX_REBUILT: AtomicU64 = AtomicU64::new(0);

/// Count one file of `bytes` read to hash it.
pub fn count_read(bytes: u64) {
    FILES_READ.fetch_add(1, Ordering::Relaxed);
    BYTES_READ.fetch_add(bytes, Ordering::Relaxed);
}

/// Count `n` trusted index entries (files or objects not read).
pub fn count_hits(n: u64) {
    INDEX_HITS.fetch_add(n, Ordering::Relaxed);
}

/// Count one on-disk index found unusable (rebuilt from the files hashed).
pub fn count_rebuilt() {
    INDEX_REBUILT.fetch_add(1, Ordering::Relaxed);
}

/// (name, value) of every counter.
pub fn debug_stats() -> Vec<(&'static str, u64)> {
    vec![
        ("files_read", FILES_READ.load(Ordering::Relaxed)),
        ("bytes_read", BYTES_READ.load(Ordering::Relaxed)),
        ("index_hits", INDEX_HITS.load(Ordering::Relaxed)),
        ("index_rebuilt", INDEX_REBUILT.load(Ordering::Relaxed)),
    ]
}
