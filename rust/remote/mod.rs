//! Remote storage: push/fetch of cache objects and run-cache entries to an S3 bucket or a
//! local directory (docs/remote.md; layout in docs/formats.md "Remote storage").
//!
//! Transfers run on one tokio runtime owned by this module (created on first use) with
//! `object_store` backends; the Python binding releases the GIL around every call. Nothing on
//! the remote is ever overwritten: every key is written create-only, and every key's content is
//! determined by its name, so a racing writer of the same key writes the same bytes.

pub mod catalog;
pub mod fetch;
pub mod gc;
pub mod multipart;
pub mod packidx;
pub mod place;
pub mod push;
pub mod runs;
pub mod transfer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Error, RemoteKind, Result};

/// The layout version this pivot reads and writes (`pivot-remote.json`).
pub const FORMAT: u64 = 1;
pub const FORMAT_FILE: &str = "pivot-remote.json";
/// Objects at least this big are stored loose (`objects/`); smaller ones only ever in packs.
/// Part of format 1: a reader never looks for a smaller object outside the packs.
pub const LOOSE_MIN: u64 = 8 << 20;
/// A pack is cut once it holds this many bytes.
pub const PACK_TARGET: u64 = 64 << 20;
/// Multipart part size (S3 wants >= 5 MiB for every part but the last; some stores want them
/// all equal, so every part but the last is exactly this).
pub const PART: usize = 8 << 20;
/// At most this many parts in flight at once (bounds upload memory to ~`PARTS_MAX` x `PART`).
pub const PARTS_MAX: usize = 8;
/// Retries of a failed request (5xx, timeouts) when the remote sets none.
pub const DEFAULT_RETRIES: usize = 10;
/// Per-request timeout unless the remote's `timeout` says otherwise.
pub const DEFAULT_TIMEOUT_S: u64 = 120;

/// How to reach a remote; built by `pivot.storage.remote` from the project config.
#[derive(Debug, Clone, Default)]
pub struct RemoteConfig {
    pub name: String,
    /// `s3://bucket/prefix` or an absolute directory path.
    pub url: String,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Parallel requests.
    pub jobs: usize,
    /// Which credential sources were tried, for auth error messages.
    pub cred_desc: String,
    /// Where verified index files are kept (`.pivot/state/remotes/<key>/`).
    pub state_dir: Option<PathBuf>,
    /// Retries of 5xx/timeouts before giving up (default 10 over at most 3 minutes).
    pub max_retries: Option<usize>,
    /// Per-request timeout in seconds.
    pub timeout_s: Option<u64>,
}

pub struct Remote {
    pub name: String,
    pub url: String,
    pub store: Arc<dyn ObjectStore>,
    /// The same store as `store` when it is S3: multipart uploads complete create-only
    /// through it (`multipart`).
    s3: Option<Arc<object_store::aws::AmazonS3>>,
    /// For requests `object_store` cannot make (the create-only multipart completion).
    http: OnceLock<reqwest::Client>,
    timeout: Duration,
    prefix: String,
    bucket: Option<String>,
    /// For a directory remote: its root, so writes can be made durable (`object_store`'s local
    /// backend renames into place without fsync).
    local_root: Option<PathBuf>,
    pub jobs: usize,
    /// Multipart parts in flight across all uploads of this remote (each holds `PART` bytes).
    pub parts: Arc<tokio::sync::Semaphore>,
    cred_desc: String,
    pub state_dir: Option<PathBuf>,
    catalog: Mutex<Option<Arc<catalog::Catalog>>>,
    /// Retries of a create-only PUT whose request timed out (see `put_once`).
    max_retries: usize,
    /// Some(true): format file present and understood; Some(false): remote is empty.
    format_seen: Mutex<Option<bool>>,
}

/// The process's runtime: a few workers are enough (the work is waiting on the network; the
/// hashing of what is read happens inline, bounded by `jobs` concurrent transfers).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cpus.clamp(2, 4))
            .thread_name("pivot-remote")
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

fn install_crypto() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // reqwest is built without a default provider (keeps aws-lc and its cmake build out);
        // ring has no post-quantum key exchange, hence the deprecation note.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

// --- progress, polled by the Python progress display -----------------------------------------

static P_OBJECTS: AtomicU64 = AtomicU64::new(0);
static P_BYTES: AtomicU64 = AtomicU64::new(0);
static P_SKIPPED: AtomicU64 = AtomicU64::new(0);
static P_TOTAL: AtomicU64 = AtomicU64::new(0);

pub fn progress() -> (u64, u64, u64, u64) {
    (
        P_OBJECTS.load(Ordering::Relaxed),
        P_BYTES.load(Ordering::Relaxed),
        P_SKIPPED.load(Ordering::Relaxed),
        P_TOTAL.load(Ordering::Relaxed),
    )
}

pub fn progress_reset(total: u64) {
    P_OBJECTS.store(0, Ordering::Relaxed);
    P_BYTES.store(0, Ordering::Relaxed);
    P_SKIPPED.store(0, Ordering::Relaxed);
    P_TOTAL.store(total, Ordering::Relaxed);
}

pub fn progress_add(objects: u64, bytes: u64, skipped: u64) {
    P_OBJECTS.fetch_add(objects, Ordering::Relaxed);
    P_BYTES.fetch_add(bytes, Ordering::Relaxed);
    P_SKIPPED.fetch_add(skipped, Ordering::Relaxed);
}

/// `s3://bucket/prefix` -> (bucket, prefix without slashes at either end).
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    Some((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

impl Remote {
    /// Build the backend; no request is made yet.
    pub fn open(cfg: &RemoteConfig) -> Result<Remote> {
        let err = |msg: String| Error::Remote {
            kind: RemoteKind::Other,
            msg: format!("remote {} ({}): {msg}", cfg.name, cfg.url),
        };
        if !cfg.url.starts_with("s3://") {
            let dir = cfg.url.strip_prefix("file://").unwrap_or(&cfg.url);
            let dir = Path::new(dir);
            if !dir.is_absolute() {
                return Err(err("a directory remote must be an absolute path".into()));
            }
            // The directory is created by the first push, so a fetch from one that does not
            // exist is an empty remote rather than a crash in the backend.
            std::fs::create_dir_all(dir).map_err(|e| err(format!("{e}")))?;
            let s = object_store::local::LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| err(format!("{e}")))?;
            let mut r = Remote::with_store(cfg, Arc::new(s), String::new(), None);
            r.local_root = Some(dir.to_path_buf());
            return Ok(r);
        }
        install_crypto();
        let (bucket, prefix) = parse_s3_url(&cfg.url)
            .ok_or_else(|| err("not a valid s3://bucket/prefix URL".into()))?;
        let timeout = Duration::from_secs(cfg.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S));
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_retry(object_store::RetryConfig {
                backoff: object_store::BackoffConfig::default(),
                max_retries: cfg.max_retries.unwrap_or(DEFAULT_RETRIES),
                retry_timeout: Duration::from_mins(3),
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_timeout(timeout)
                    .with_connect_timeout(Duration::from_secs(10)),
            );
        if let Some(r) = &cfg.region {
            b = b.with_region(r);
        }
        if let Some(e) = &cfg.endpoint_url {
            // Non-AWS endpoints (SeaweedFS, MinIO...) want path-style requests.
            b = b
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let (Some(k), Some(s)) = (&cfg.access_key_id, &cfg.secret_access_key) {
            b = b.with_access_key_id(k).with_secret_access_key(s);
            if let Some(t) = &cfg.session_token {
                b = b.with_token(t);
            }
        }
        let s = Arc::new(b.build().map_err(|e| err(format!("{e}")))?);
        let mut r = Remote::with_store(cfg, s.clone(), prefix, Some(bucket));
        r.s3 = Some(s);
        Ok(r)
    }

    /// A remote over any backend (tests use the in-memory store).
    pub fn with_store(
        cfg: &RemoteConfig,
        store: Arc<dyn ObjectStore>,
        prefix: String,
        bucket: Option<String>,
    ) -> Remote {
        Remote {
            name: cfg.name.clone(),
            url: cfg.url.clone(),
            store,
            s3: None,
            http: OnceLock::new(),
            timeout: Duration::from_secs(cfg.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S)),
            prefix,
            bucket,
            local_root: None,
            jobs: cfg.jobs.max(1),
            parts: Arc::new(tokio::sync::Semaphore::new(cfg.jobs.clamp(2, PARTS_MAX))),
            cred_desc: if cfg.cred_desc.is_empty() {
                "environment".into()
            } else {
                cfg.cred_desc.clone()
            },
            state_dir: cfg.state_dir.clone(),
            catalog: Mutex::new(None),
            max_retries: cfg.max_retries.unwrap_or(DEFAULT_RETRIES),
            format_seen: Mutex::new(None),
        }
    }

    /// The store key of `rel` under the remote's prefix.
    pub fn key(&self, rel: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{}/{rel}", self.prefix))
        }
    }

    pub fn object_key(hash: &str) -> String {
        format!("objects/{}/{}", &hash[..2], &hash[2..])
    }

    pub fn run_key(key: &str) -> String {
        format!("runs/{}/{}", &key[..2], &key[2..])
    }

    fn prefix_msg(&self) -> String {
        format!("remote {} ({})", self.name, self.url)
    }

    /// An error naming this remote.
    pub fn error(&self, kind: RemoteKind, msg: impl std::fmt::Display) -> Error {
        Error::Remote {
            kind,
            msg: format!("{}: {msg}", self.prefix_msg()),
        }
    }

    /// Map a backend error on `what` (a key or an action) to a one-line pivot error.
    pub fn map_err(&self, e: &object_store::Error, what: &str) -> Error {
        let text = format!("{e}");
        let chain = error_chain(e);
        if chain.contains("NoSuchBucket") {
            let b = self.bucket.as_deref().unwrap_or("?");
            return self.error(RemoteKind::NotFound, format!("bucket '{b}' does not exist"));
        }
        let auth = matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || [
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "InvalidToken",
            "credential",
        ]
        .iter()
        .any(|k| chain.contains(k));
        if auth {
            return self.error(
                RemoteKind::Auth,
                format!(
                    "access denied ({what}); credentials tried: {}",
                    self.cred_desc
                ),
            );
        }
        let short = text.lines().next().unwrap_or("").to_string();
        self.error(RemoteKind::Other, format!("{what}: {short}"))
    }

    /// Create-only write of a small payload; an existing key counts as success (same name,
    /// same bytes). Stores without conditional create get a HEAD first and accept the race.
    pub async fn put_once(&self, rel: &str, data: bytes::Bytes) -> Result<bool> {
        let key = self.key(rel);
        // object_store retries 5xx for every request but a timeout only for idempotent ones,
        // and a conditional PUT is not idempotent to it. Here it is: sent again after a
        // timeout, a PUT that had landed answers 412, which counts as success below.
        let mut backoff = Backoff::new(self.max_retries);
        let first = loop {
            let opts = PutOptions::from(PutMode::Create);
            match self
                .store
                .put_opts(&key, PutPayload::from(data.clone()), opts)
                .await
            {
                Err(e) if is_transport_timeout(&e) && backoff.wait().await => {}
                other => break other,
            }
        };
        match first {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(
                object_store::Error::NotImplemented { .. }
                | object_store::Error::NotSupported { .. },
            ) => {
                if self.exists(rel).await? {
                    return Ok(false);
                }
                self.store
                    .put(&key, PutPayload::from(data))
                    .await
                    .map_err(|e| self.map_err(&e, rel))?;
                Ok(true)
            }
            Err(e) => Err(self.map_err(&e, rel)),
        }
    }

    /// On a directory remote, fsync the file `rel` and its directory, so what is published
    /// next (an index after its pack, manifests after their files) never outlives it in a
    /// power loss. A no-op on object stores (a completed PUT is durable).
    pub fn make_durable(&self, rel: &str) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let p = root.join(rel);
        let failed =
            |e: &dyn std::fmt::Display| self.error(RemoteKind::Other, format!("{rel}: {e}"));
        std::fs::File::open(&p)
            .and_then(|f| f.sync_all())
            .map_err(|e| failed(&e))?;
        crate::atomic::fsync_dir(crate::atomic::parent_dir(&p)).map_err(|e| failed(&e))
    }

    /// HEAD: does `rel` exist?
    pub async fn exists(&self, rel: &str) -> Result<bool> {
        match self.store.head(&self.key(rel)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { ref source, .. })
                if !format!("{source:?}").contains("NoSuchBucket") =>
            {
                Ok(false)
            }
            Err(e) => Err(self.map_err(&e, rel)),
        }
    }

    /// GET the whole of a small key; None if absent.
    pub async fn get_small(&self, rel: &str) -> Result<Option<bytes::Bytes>> {
        match self.store.get(&self.key(rel)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| self.map_err(&e, rel))?)),
            Err(object_store::Error::NotFound { ref source, .. })
                if !format!("{source:?}").contains("NoSuchBucket") =>
            {
                Ok(None)
            }
            Err(e) => Err(self.map_err(&e, rel)),
        }
    }

    /// Read (and on a push, create) `pivot-remote.json`; refuse any other format.
    /// Returns whether the remote has been initialised.
    pub async fn check_format(&self, create: bool) -> Result<bool> {
        if let Some(seen) = *self.format_seen.lock().unwrap() {
            if seen || !create {
                return Ok(seen);
            }
        }
        let mut data = self.get_small(FORMAT_FILE).await?;
        if data.is_none() && create {
            let body = format!("{{\"format\":{FORMAT}}}\n");
            if self.put_once(FORMAT_FILE, body.into()).await? {
                self.make_durable(FORMAT_FILE)?;
            }
            data = self.get_small(FORMAT_FILE).await?;
        }
        let seen = match data {
            None => false,
            Some(d) => {
                let v: serde_json::Value = serde_json::from_slice(&d).map_err(|_| {
                    self.error(
                        RemoteKind::Format,
                        format!("{FORMAT_FILE} is not valid JSON; not a pivot remote?"),
                    )
                })?;
                match v.get("format").and_then(serde_json::Value::as_u64) {
                    Some(FORMAT) => true,
                    Some(n) => {
                        return Err(self.error(
                            RemoteKind::Format,
                            format!(
                            "remote has format {n}; this pivot understands {FORMAT}: upgrade pivot"
                        ),
                        ))
                    }
                    None => {
                        return Err(self.error(
                            RemoteKind::Format,
                            format!("{FORMAT_FILE} has no integer \"format\""),
                        ))
                    }
                }
            }
        };
        *self.format_seen.lock().unwrap() = Some(seen);
        Ok(seen)
    }

    /// The index set, loaded once per handle (extended by this handle's own pushes).
    pub async fn catalog(&self) -> Result<Arc<catalog::Catalog>> {
        if let Some(c) = self.catalog.lock().unwrap().clone() {
            return Ok(c);
        }
        let c = Arc::new(catalog::Catalog::load(self).await?);
        *self.catalog.lock().unwrap() = Some(c.clone());
        Ok(c)
    }

    /// Record packs this handle published, so later steps of the same command see them.
    pub fn catalog_add(&self, idx: packidx::PackIndex) {
        let mut g = self.catalog.lock().unwrap();
        let mut c = g.as_deref().cloned().unwrap_or_default();
        c.add(idx);
        *g = Some(Arc::new(c));
    }

    /// The HTTP client for requests made outside `object_store` (built on first use).
    pub fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            install_crypto();
            reqwest::Client::builder()
                .timeout(self.timeout)
                .connect_timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default()
        })
    }

    /// Run `fut` on the remote runtime from synchronous code.
    #[allow(clippy::unused_self)] // a method: a remote's transfers run on the remote runtime
    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        runtime().block_on(fut)
    }
}

/// Pauses between the attempts of a request `object_store` does not retry itself: 100 ms,
/// doubling up to 15 s, at most `retries` times.
pub struct Backoff {
    left: usize,
    pause: Duration,
    /// Attempts that failed so far (`wait` calls that allowed another).
    pub failed: usize,
}

impl Backoff {
    pub fn new(retries: usize) -> Backoff {
        Backoff {
            left: retries,
            pause: Duration::from_millis(100),
            failed: 0,
        }
    }

    /// Wait before the next attempt; false (at once) when the retries are used up.
    pub async fn wait(&mut self) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        self.failed += 1;
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(Duration::from_secs(15));
        true
    }
}

/// A request that timed out or lost its connection (rather than an answer from the server).
fn is_transport_timeout(e: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(h) = c.downcast_ref::<HttpError>() {
            return matches!(
                h.kind(),
                HttpErrorKind::Timeout | HttpErrorKind::Interrupted
            );
        }
        cur = c.source();
    }
    false
}

/// The whole `source` chain of an error as one string (backends put the S3 code deep inside).
fn error_chain(e: &object_store::Error) -> String {
    let mut s = format!("{e} {e:?}");
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push(' ');
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
pub mod testutil {
    use super::*;

    pub fn config(name: &str) -> RemoteConfig {
        RemoteConfig {
            name: name.into(),
            url: format!("memory://{name}"),
            jobs: 4,
            ..Default::default()
        }
    }

    pub fn memory_remote() -> Remote {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        Remote::with_store(&config("mem"), store, "pfx".into(), None)
    }

    /// Where object `h` lives in the cache at `dir`.
    pub fn object(dir: &Path, h: &str) -> PathBuf {
        crate::cache::Cache::new(dir).object_path(h).unwrap()
    }

    /// A cache dir with the given objects stored under their hashes.
    pub fn cache_with(objects: &[&[u8]]) -> (tempfile::TempDir, Vec<String>) {
        let d = tempfile::tempdir().unwrap();
        let mut names = vec![];
        for o in objects {
            let h = crate::hash::hash_bytes(o);
            let p = object(d.path(), &h);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, o).unwrap();
            names.push(h);
        }
        (d, names)
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(
            parse_s3_url("s3://b/x/y/"),
            Some(("b".into(), "x/y".into()))
        );
        assert_eq!(parse_s3_url("s3://b"), Some(("b".into(), String::new())));
        assert_eq!(parse_s3_url("s3:///x"), None);
    }

    #[test]
    fn format_file_is_created_once_and_checked() {
        let r = memory_remote();
        assert!(!r.block_on(r.check_format(false)).unwrap(), "empty remote");
        assert!(r.block_on(r.check_format(true)).unwrap());
        let data = r.block_on(r.get_small(FORMAT_FILE)).unwrap().unwrap();
        assert_eq!(&data[..], b"{\"format\":1}\n");
        // A second writer sees the first one's file and does not rewrite it.
        let r2 = Remote::with_store(&config("mem"), r.store.clone(), "pfx".into(), None);
        assert!(r2.block_on(r2.check_format(true)).unwrap());
    }

    #[test]
    fn unknown_format_is_refused_naming_the_remote() {
        let r = memory_remote();
        r.block_on(r.put_once(FORMAT_FILE, "{\"format\":2}\n".into()))
            .unwrap();
        let e = r.block_on(r.check_format(false)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("remote mem") && msg.contains("format 2"),
            "{msg}"
        );
        assert!(matches!(
            e,
            Error::Remote {
                kind: RemoteKind::Format,
                ..
            }
        ));
    }

    #[test]
    fn put_once_never_overwrites() {
        let r = memory_remote();
        assert!(r.block_on(r.put_once("a", "one".into())).unwrap());
        assert!(!r.block_on(r.put_once("a", "two".into())).unwrap());
        let d = r.block_on(r.get_small("a")).unwrap().unwrap();
        assert_eq!(&d[..], b"one");
    }

    #[test]
    fn a_create_only_put_that_times_out_is_sent_again() {
        // A server that accepts connections and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicU64::new(0));
        let seen = accepted.clone();
        std::thread::spawn(move || {
            let mut held = vec![];
            for conn in listener.incoming() {
                seen.fetch_add(1, Ordering::SeqCst);
                held.push(conn);
            }
        });
        let cfg = RemoteConfig {
            name: "hung".into(),
            url: "s3://b/p".into(),
            endpoint_url: Some(format!("http://127.0.0.1:{port}")),
            region: Some("us-east-1".into()),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            jobs: 1,
            max_retries: Some(2),
            timeout_s: Some(1),
            ..Default::default()
        };
        let r = Remote::open(&cfg).unwrap();
        let e = r
            .block_on(r.put_once("index/x.idx", "x".into()))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("remote hung (s3://b/p): index/x.idx"),
            "{e}"
        );
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            3,
            "one try and two retries"
        );
    }

    #[test]
    fn local_directory_backend_works() {
        let d = tempfile::tempdir().unwrap();
        let cfg = RemoteConfig {
            name: "dir".into(),
            url: d.path().join("rem").to_string_lossy().into(),
            jobs: 2,
            ..Default::default()
        };
        let r = Remote::open(&cfg).unwrap();
        assert!(r.block_on(r.check_format(true)).unwrap());
        assert!(d.path().join("rem").join(FORMAT_FILE).is_file());
        assert!(!r.block_on(r.put_once(FORMAT_FILE, "x".into())).unwrap());
        r.make_durable(FORMAT_FILE).unwrap();
        assert!(
            r.make_durable("nope").is_err(),
            "a missing file is an error, not a no-op"
        );
    }
}
