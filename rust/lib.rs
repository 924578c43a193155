//! `pivot._native`: the #[pymodule] and its #[pyfunction] wrappers. Each wrapper extracts owned
//! arguments, releases the GIL, calls a pure module and maps the error; no logic lives here.

use pyo3::prelude::*;

pub mod atomic;
pub mod cache;
pub mod error;
pub mod hash;
pub mod index;
pub mod link;
pub mod lock;
pub mod manifest;
pub mod restore;
pub mod verify;

// === section: hashing, manifests, index, locks, atomic writes (core helper) ===

// === section: cache insert / restore / verify (cache helper) ===

#[pymodule]
fn _native(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    // core helper registers its functions here
    // cache helper registers its functions here
    Ok(())
}
