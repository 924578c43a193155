//! `pivot._native`: the #[pymodule] and its #[pyfunction] wrappers. Each wrapper extracts owned
//! arguments, releases the GIL, calls a pure module and maps the error; no logic lives here.

use pyo3::prelude::*;

mod atomic;
mod cache;
mod counters;
mod error;
mod hash;
mod index;
mod lock;
mod manifest;
mod manifest_diff;
mod mmap_guard;
mod paths;
mod remote;
mod stat;

// === section: hashing, manifests, index, locks, atomic writes (core helper) ===

// Wrappers take owned arguments (`PathBuf`, `String`, `Vec`): pyo3 extracts those from Python
// objects, and they are what crosses into `py.detach` (docs/architecture.md, "Rust core").
#[allow(clippy::needless_pass_by_value)]
mod core_api {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyDict, PyList};

    use crate::cache::Cache;
    use crate::error::to_pyerr;
    use crate::{atomic, counters, hash, index, lock, paths};

    /// Python `HashInfo`.
    pub fn hash_info<'py>(py: Python<'py>, i: &paths::PathInfo) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("hash", &i.hash)?;
        d.set_item("size", i.size)?;
        d.set_item("nfiles", i.nfiles)?;
        d.set_item("is_dir", i.is_dir)?;
        Ok(d)
    }

    #[pyfunction]
    pub fn blake3_bytes(py: Python<'_>, data: &[u8]) -> String {
        py.detach(|| hash::hash_bytes(data))
    }

    #[pyfunction]
    pub fn hash_file(py: Python<'_>, path: PathBuf) -> PyResult<String> {
        py.detach(|| hash::hash_file(&path)).map_err(to_pyerr)
    }

    #[pyfunction]
    pub fn hash_files(py: Python<'_>, paths: Vec<PathBuf>) -> PyResult<Vec<String>> {
        py.detach(|| hash::hash_files(&paths)).map_err(to_pyerr)
    }

    #[pyfunction]
    #[pyo3(signature = (path, state_dir=None))]
    pub fn hash_path(
        py: Python<'_>,
        path: PathBuf,
        state_dir: Option<PathBuf>,
    ) -> PyResult<Bound<'_, PyDict>> {
        let i = py
            .detach(|| paths::hash_path(&path, state_dir.as_deref()))
            .map_err(to_pyerr)?;
        hash_info(py, &i)
    }

    #[pyfunction]
    #[pyo3(signature = (paths, state_dir=None))]
    pub fn hash_paths(
        py: Python<'_>,
        paths: Vec<PathBuf>,
        state_dir: Option<PathBuf>,
    ) -> PyResult<Bound<'_, PyList>> {
        let infos = py
            .detach(|| paths::hash_paths(&paths, state_dir.as_deref()))
            .map_err(to_pyerr)?;
        let out = PyList::empty(py);
        for i in &infos {
            out.append(hash_info(py, i)?)?;
        }
        Ok(out)
    }

    #[pyfunction]
    pub fn read_manifest(
        py: Python<'_>,
        cache_dir: PathBuf,
        dir_hash: String,
    ) -> PyResult<Bound<'_, PyList>> {
        let m = py
            .detach(|| Cache::new(&cache_dir).read_manifest(&dir_hash))
            .map_err(to_pyerr)?;
        let out = PyList::empty(py);
        for e in &m.entries {
            let d = PyDict::new(py);
            // Paths decode like os.fsdecode (surrogateescape), so os.fsencode gives the bytes.
            d.set_item("path", OsStr::from_bytes(&e.path))?;
            d.set_item("hash", &e.hash)?;
            d.set_item("size", e.size)?;
            d.set_item("exec", e.exec)?;
            d.set_item("link", e.link.as_deref().map(OsStr::from_bytes))?;
            out.append(d)?;
        }
        Ok(out)
    }

    #[pyfunction]
    pub fn lock_encode<'py>(py: Python<'py>, json_text: &str) -> PyResult<Bound<'py, PyBytes>> {
        let b = py
            .detach(|| lock::encode(json_text, Path::new("<lock data>")))
            .map_err(to_pyerr)?;
        Ok(PyBytes::new(py, &b))
    }

    #[pyfunction]
    pub fn lock_decode(py: Python<'_>, data: &[u8], path: PathBuf) -> PyResult<String> {
        py.detach(|| lock::decode(data, &path)).map_err(to_pyerr)
    }

    #[pyfunction]
    pub fn lock_read(py: Python<'_>, path: PathBuf) -> PyResult<Option<String>> {
        py.detach(|| lock::read(&path)).map_err(to_pyerr)
    }

    #[pyfunction]
    pub fn lock_write(py: Python<'_>, path: PathBuf, json_text: &str) -> PyResult<()> {
        py.detach(|| lock::write(&path, json_text))
            .map_err(to_pyerr)
    }

    #[pyfunction]
    #[pyo3(signature = (path, data, kill_point=None))]
    pub fn write_atomic(
        py: Python<'_>,
        path: PathBuf,
        data: &[u8],
        kill_point: Option<String>,
    ) -> PyResult<()> {
        py.detach(|| atomic::write_atomic(&path, data, kill_point.as_deref()))
            .map_err(to_pyerr)
    }

    #[pyfunction]
    pub fn kill_point(name: &str) {
        atomic::kill_point(name);
    }

    /// Defer stat-index saves to one write per index (`on=False` flushes and stops deferring).
    #[pyfunction]
    pub fn index_defer_saves(py: Python<'_>, on: bool) -> PyResult<()> {
        py.detach(|| index::defer_saves(on)).map_err(to_pyerr)
    }

    /// Process-wide counters (files read, index hits...) for tests.
    #[pyfunction]
    pub fn _debug_stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in counters::debug_stats() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add_function(wrap_pyfunction!(blake3_bytes, m)?)?;
        m.add_function(wrap_pyfunction!(hash_file, m)?)?;
        m.add_function(wrap_pyfunction!(hash_files, m)?)?;
        m.add_function(wrap_pyfunction!(hash_path, m)?)?;
        m.add_function(wrap_pyfunction!(hash_paths, m)?)?;
        m.add_function(wrap_pyfunction!(read_manifest, m)?)?;
        m.add_function(wrap_pyfunction!(lock_encode, m)?)?;
        m.add_function(wrap_pyfunction!(lock_decode, m)?)?;
        m.add_function(wrap_pyfunction!(lock_read, m)?)?;
        m.add_function(wrap_pyfunction!(lock_write, m)?)?;
        m.add_function(wrap_pyfunction!(write_atomic, m)?)?;
        m.add_function(wrap_pyfunction!(kill_point, m)?)?;
        m.add_function(wrap_pyfunction!(_debug_stats, m)?)?;
        m.add_function(wrap_pyfunction!(index_defer_saves, m)?)?;
        Ok(())
    }
}

// === section: cache insert / restore / verify (cache helper) ===

#[allow(clippy::needless_pass_by_value)] // owned arguments, as in `core_api`
mod cache_api {
    use std::path::PathBuf;

    use pyo3::exceptions::PyValueError;
    use pyo3::prelude::*;
    use pyo3::types::PyDict;

    use crate::cache::link::{self, LinkMode};
    use crate::cache::{self, insert, restore, verify};
    use crate::error::to_pyerr;

    fn modes(names: &[String]) -> PyResult<Vec<LinkMode>> {
        link::parse_modes(names).map_err(PyValueError::new_err)
    }

    /// Insert a file or directory; the GIL is released for the whole walk/hash/link pass.
    #[pyfunction]
    pub fn cache_insert(
        py: Python<'_>,
        path: PathBuf,
        cache_dir: PathBuf,
        state_dir: Option<PathBuf>,
        link_modes: Vec<String>,
    ) -> PyResult<Bound<'_, PyDict>> {
        let modes = modes(&link_modes)?;
        let i = py
            .detach(|| insert::insert(&path, &cache_dir, state_dir.as_deref(), modes))
            .map_err(to_pyerr)?;
        super::core_api::hash_info(py, &i)
    }

    /// Materialise an object at `dest` atomically; returns the link mode used. With `state_dir`
    /// (the project's `.pivot/state`), the stat index spares hardlink/reflink restores the read
    /// of objects it vouches for, and records the objects it had to read (`restore` module doc).
    #[pyfunction]
    #[pyo3(signature = (dir_or_file_hash, is_dir, dest, cache_dir, link_modes, state_dir=None))]
    pub fn cache_restore(
        py: Python<'_>,
        dir_or_file_hash: String,
        is_dir: bool,
        dest: PathBuf,
        cache_dir: PathBuf,
        link_modes: Vec<String>,
        state_dir: Option<PathBuf>,
    ) -> PyResult<&'static str> {
        let modes = modes(&link_modes)?;
        let m = py
            .detach(|| {
                restore::restore(
                    &dir_or_file_hash,
                    is_dir,
                    &dest,
                    &cache_dir,
                    modes,
                    state_dir.as_deref(),
                )
            })
            .map_err(to_pyerr)?;
        Ok(m.as_str())
    }

    /// Restore some entries of cached directory `dir_hash` into the directory `dest`, leaving
    /// the others untouched: those below `paths`, or with `paths=None` every missing one
    /// (`cache::restore::partial` module doc). Returns a dict with
    /// `restored`, `unchanged`, `refused` and `not_found`.
    #[pyfunction]
    #[pyo3(signature = (dir_hash, dest, cache_dir, link_modes, state_dir=None, paths=None, force=false))]
    #[allow(clippy::too_many_arguments)]
    pub fn cache_restore_entries(
        py: Python<'_>,
        dir_hash: String,
        dest: PathBuf,
        cache_dir: PathBuf,
        link_modes: Vec<String>,
        state_dir: Option<PathBuf>,
        paths: Option<Vec<String>>,
        force: bool,
    ) -> PyResult<Bound<'_, PyDict>> {
        let modes = modes(&link_modes)?;
        let sel = match paths {
            Some(p) => restore::partial::Select::Paths(p),
            None => restore::partial::Select::Missing,
        };
        let r = py
            .detach(|| {
                restore::partial::restore_partial(
                    &dir_hash,
                    &dest,
                    &cache_dir,
                    modes,
                    state_dir.as_deref(),
                    &sel,
                    force,
                )
            })
            .map_err(to_pyerr)?;
        let d = PyDict::new(py);
        d.set_item("restored", r.restored)?;
        d.set_item("unchanged", r.unchanged)?;
        d.set_item("refused", r.refused)?;
        d.set_item("not_found", r.not_found)?;
        Ok(d)
    }

    #[pyfunction]
    pub fn cache_contains(
        py: Python<'_>,
        cache_dir: PathBuf,
        hash: String,
        is_dir: bool,
    ) -> PyResult<bool> {
        py.detach(|| cache::Cache::new(&cache_dir).contains(&hash, is_dir))
            .map_err(to_pyerr)
    }

    #[pyfunction]
    #[pyo3(signature = (cache_dir, hashes=None))]
    pub fn cache_verify(
        py: Python<'_>,
        cache_dir: PathBuf,
        hashes: Option<Vec<String>>,
    ) -> PyResult<Bound<'_, PyDict>> {
        let r = py
            .detach(|| verify::verify(&cache_dir, hashes.as_deref()))
            .map_err(to_pyerr)?;
        let d = PyDict::new(py);
        d.set_item("checked", r.checked)?;
        d.set_item("corrupt", r.corrupt)?;
        d.set_item("missing", r.missing)?;
        Ok(d)
    }

    /// Remove the objects `roots` do not keep and that are older than `grace_s` seconds
    /// (`rust/cache/gc.rs`); `dry_run` only reports them.
    #[pyfunction]
    pub fn cache_gc(
        py: Python<'_>,
        cache_dir: PathBuf,
        roots: Vec<(String, bool)>,
        grace_s: f64,
        dry_run: bool,
    ) -> PyResult<Bound<'_, PyDict>> {
        let grace = std::time::Duration::try_from_secs_f64(grace_s.max(0.0))
            .map_err(|e| PyValueError::new_err(format!("grace_s: {e}")))?;
        let r = py
            .detach(|| cache::gc::gc(&cache_dir, &roots, grace, dry_run))
            .map_err(to_pyerr)?;
        let d = PyDict::new(py);
        d.set_item("removed", r.removed)?;
        d.set_item("bytes", r.bytes)?;
        d.set_item("kept", r.kept)?;
        d.set_item("young", r.young)?;
        Ok(d)
    }

    /// Delete a directory tree pivot owns (a stage's old output moved aside), GIL released.
    #[pyfunction]
    pub fn remove_tree(py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| cache::remove_tree(&path))
            .map_err(|e| to_pyerr(crate::error::Error::io(&path, e)))
    }

    /// Remove the `.pvtmp-<pid>-*` / `.pvold-<pid>-*` entries of `dir` left by dead processes.
    #[pyfunction]
    pub fn clean_stale_temps(py: Python<'_>, dir: PathBuf) {
        py.detach(|| cache::clean_stale(&dir));
    }

    /// (files, bytes) inserted by this process so far; polled by the commit progress display.
    #[pyfunction]
    pub fn insert_progress() -> (u64, u64) {
        insert::insert_progress()
    }

    pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add_function(wrap_pyfunction!(cache_insert, m)?)?;
        m.add_function(wrap_pyfunction!(insert_progress, m)?)?;
        m.add_function(wrap_pyfunction!(remove_tree, m)?)?;
        m.add_function(wrap_pyfunction!(clean_stale_temps, m)?)?;
        m.add_function(wrap_pyfunction!(cache_restore, m)?)?;
        m.add_function(wrap_pyfunction!(cache_restore_entries, m)?)?;
        m.add_function(wrap_pyfunction!(cache_contains, m)?)?;
        m.add_function(wrap_pyfunction!(cache_verify, m)?)?;
        m.add_function(wrap_pyfunction!(cache_gc, m)?)?;
        Ok(())
    }
}

// === section: comparing revisions (results helper) ===

#[allow(clippy::needless_pass_by_value)] // owned arguments, as in `core_api`
mod results_api {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    use pyo3::prelude::*;
    use pyo3::types::{PyDict, PyList};

    use crate::error::to_pyerr;
    use crate::manifest_diff::{diff_sides, Side};

    fn side<'a>(hash: Option<&'a str>, dir: Option<&'a Path>) -> Side<'a> {
        match (dir, hash) {
            (Some(d), _) => Side::Dir(d),
            (None, Some(h)) => Side::Cached(h),
            (None, None) => Side::Empty,
        }
    }

    /// Files added / modified / deleted between two directory manifests (`None` = no
    /// directory; `new_dir` = a workspace directory instead of `new_hash`). The GIL is released
    /// while both sides are read and merged (10^6 entries: see `benchmarks/bench_results.py`).
    #[pyfunction]
    #[pyo3(signature = (cache_dir, old_hash, new_hash, new_dir=None, state_dir=None))]
    pub fn manifest_diff(
        py: Python<'_>,
        cache_dir: PathBuf,
        old_hash: Option<String>,
        new_hash: Option<String>,
        new_dir: Option<PathBuf>,
        state_dir: Option<PathBuf>,
    ) -> PyResult<Bound<'_, PyDict>> {
        let d = py
            .detach(|| {
                diff_sides(
                    &cache_dir,
                    side(old_hash.as_deref(), None),
                    side(new_hash.as_deref(), new_dir.as_deref()),
                    state_dir.as_deref(),
                )
            })
            .map_err(to_pyerr)?;
        let out = PyDict::new(py);
        for (key, paths) in [
            ("added", &d.added),
            ("modified", &d.modified),
            ("deleted", &d.deleted),
        ] {
            let list = PyList::empty(py);
            for p in paths {
                // Decoded like os.fsdecode, as read_manifest does.
                list.append(OsStr::from_bytes(p))?;
            }
            out.set_item(key, list)?;
        }
        Ok(out)
    }

    pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add_function(wrap_pyfunction!(manifest_diff, m)?)?;
        Ok(())
    }
}

// === section: remote storage (push / fetch; docs/remote.md) ===

#[allow(clippy::needless_pass_by_value)] // owned arguments, as in `core_api`
mod remote_api {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::PathBuf;

    use pyo3::prelude::*;
    use pyo3::types::{PyDict, PyList};

    use crate::error::to_pyerr;
    use crate::remote::{self, fetch, gc, push, runs};

    /// A configured remote; one per command, so its index set is read once.
    #[pyclass(name = "Remote", module = "pivot._native", frozen)]
    pub struct PyRemote {
        inner: remote::Remote,
    }

    fn problems<'py>(py: Python<'py>, ps: &[fetch::Problem]) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for p in ps {
            let d = PyDict::new(py);
            d.set_item("hash", &p.hash)?;
            d.set_item("dir", &p.dir)?;
            d.set_item("path", p.path.as_deref().map(OsStr::from_bytes))?;
            out.append(d)?;
        }
        Ok(out)
    }

    #[pymethods]
    impl PyRemote {
        #[new]
        #[pyo3(signature = (name, url, *, endpoint_url=None, region=None, access_key_id=None,
            secret_access_key=None, session_token=None, jobs=4, cred_desc=String::new(),
            state_dir=None, max_retries=None, timeout_s=None))]
        #[allow(clippy::too_many_arguments)]
        fn new(
            name: String,
            url: String,
            endpoint_url: Option<String>,
            region: Option<String>,
            access_key_id: Option<String>,
            secret_access_key: Option<String>,
            session_token: Option<String>,
            jobs: usize,
            cred_desc: String,
            state_dir: Option<PathBuf>,
            max_retries: Option<usize>,
            timeout_s: Option<u64>,
        ) -> PyResult<Self> {
            let cfg = remote::RemoteConfig {
                name,
                url,
                endpoint_url,
                region,
                access_key_id,
                secret_access_key,
                session_token,
                jobs,
                cred_desc,
                state_dir,
                max_retries,
                timeout_s,
            };
            let inner = remote::Remote::open(&cfg).map_err(to_pyerr)?;
            Ok(PyRemote { inner })
        }

        /// Publish objects (hash, `is_dir`); see `remote::push`.
        fn push<'py>(
            &self,
            py: Python<'py>,
            cache_dir: PathBuf,
            items: Vec<(String, bool)>,
        ) -> PyResult<Bound<'py, PyDict>> {
            let r = py
                .detach(|| push::push(&self.inner, &cache_dir, &items))
                .map_err(to_pyerr)?;
            let d = PyDict::new(py);
            d.set_item("uploaded", r.uploaded)?;
            d.set_item("bytes", r.bytes)?;
            d.set_item("skipped", r.skipped)?;
            d.set_item("missing", r.missing)?;
            d.set_item("incomplete", r.incomplete)?;
            Ok(d)
        }

        /// Bring objects (hash, `is_dir`) into the cache, verified, recording them in the
        /// stat index under `state_dir`; see `remote::fetch`.
        #[pyo3(signature = (cache_dir, items, state_dir=None))]
        fn fetch<'py>(
            &self,
            py: Python<'py>,
            cache_dir: PathBuf,
            items: Vec<(String, bool)>,
            state_dir: Option<PathBuf>,
        ) -> PyResult<Bound<'py, PyDict>> {
            let r = py
                .detach(|| fetch::fetch(&self.inner, &cache_dir, &items, state_dir.as_deref()))
                .map_err(to_pyerr)?;
            let d = PyDict::new(py);
            d.set_item("fetched", r.fetched)?;
            d.set_item("bytes", r.bytes)?;
            d.set_item("skipped", r.skipped)?;
            d.set_item("missing", problems(py, &r.missing)?)?;
            d.set_item("corrupt", problems(py, &r.corrupt)?)?;
            Ok(d)
        }

        /// Whether the remote has each (hash, `is_dir`, size) item, directories file by file.
        fn contains(
            &self,
            py: Python<'_>,
            cache_dir: PathBuf,
            items: Vec<(String, bool, Option<u64>)>,
        ) -> PyResult<Vec<bool>> {
            py.detach(|| fetch::contains(&self.inner, &cache_dir, &items))
                .map_err(to_pyerr)
        }

        /// Upload run-cache entries: (uploaded, already there, absent locally).
        fn push_runs(
            &self,
            py: Python<'_>,
            runs_dir: PathBuf,
            keys: Vec<String>,
        ) -> PyResult<(u64, u64, Vec<String>)> {
            py.detach(|| runs::push(&self.inner, &runs_dir, &keys))
                .map_err(to_pyerr)
        }

        /// Download run-cache entries; per key, whether it is now local.
        fn fetch_runs(
            &self,
            py: Python<'_>,
            runs_dir: PathBuf,
            keys: Vec<String>,
        ) -> PyResult<Vec<bool>> {
            py.detach(|| runs::fetch(&self.inner, &runs_dir, &keys))
                .map_err(to_pyerr)
        }

        /// Write a roots record for a push from `clone` (docs/remote.md "Garbage collection");
        /// returns the holder of a live gc lock, if any (the push must then stop).
        fn record_roots(
            &self,
            py: Python<'_>,
            clone: String,
            pushed: Vec<(String, bool)>,
            roots: Vec<(String, bool)>,
            complete: bool,
        ) -> PyResult<Option<String>> {
            py.detach(|| gc::record_roots(&self.inner, &clone, &pushed, &roots, complete))
                .map_err(to_pyerr)
        }

        /// Collect the remote; see `remote::gc::gc`.
        #[pyo3(signature = (cache_dir, roots, *, grace_s, runs_s, records_s, repack_ratio,
            dry_run, holder, lease_s, break_lock))]
        #[allow(clippy::too_many_arguments)]
        fn gc<'py>(
            &self,
            py: Python<'py>,
            cache_dir: PathBuf,
            roots: Vec<(String, bool)>,
            grace_s: i64,
            runs_s: i64,
            records_s: i64,
            repack_ratio: f64,
            dry_run: bool,
            holder: String,
            lease_s: i64,
            break_lock: bool,
        ) -> PyResult<Bound<'py, PyDict>> {
            let o = gc::GcOptions {
                grace_s,
                runs_s,
                records_s,
                repack_ratio,
                dry_run,
                holder,
                lease_s,
                break_lock,
            };
            let r = py
                .detach(|| gc::gc(&self.inner, &cache_dir, &roots, &o))
                .map_err(to_pyerr)?;
            let d = PyDict::new(py);
            d.set_item("records", r.records)?;
            d.set_item("records_removed", r.records_removed)?;
            d.set_item("runs_kept", r.runs_kept)?;
            d.set_item("runs_removed", r.runs_removed)?;
            d.set_item("objects_removed", r.objects_removed)?;
            d.set_item("bytes_removed", r.bytes_removed)?;
            d.set_item("packs_removed", r.packs_removed)?;
            d.set_item("packs_rewritten", r.packs_rewritten)?;
            d.set_item("live", r.live)?;
            d.set_item("young", r.young)?;
            d.set_item("notes", r.notes)?;
            Ok(d)
        }

        /// Index files that failed their check in this handle's index set (ignored).
        fn bad_indexes(&self, py: Python<'_>) -> PyResult<Vec<String>> {
            py.detach(|| {
                let c = self.inner.block_on(self.inner.catalog())?;
                Ok(c.bad.clone())
            })
            .map_err(to_pyerr)
        }
    }

    /// (objects done, bytes done, skipped, total objects) of the running transfer.
    #[pyfunction]
    pub fn remote_progress() -> (u64, u64, u64, u64) {
        remote::progress()
    }

    pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add_class::<PyRemote>()?;
        m.add_function(wrap_pyfunction!(remote_progress, m)?)?;
        Ok(())
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    core_api::register(m)?;
    cache_api::register(m)?;
    results_api::register(m)?;
    remote_api::register(m)?;
    Ok(())
}
