//! The one error type of the Rust core. Every variant names the path it is about, so a message
//! printed on its own (`Error: <message>`) tells the user where to look.
//!
//! The mapping to Python (`to_pyerr`) lives here because it is the binding boundary: io errors
//! become the matching `OSError` subclass with `errno`, `strerror` and `filename` set; domain
//! errors become the `pivot.exceptions` classes of the same name.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: cache object {hash} is corrupt (its content does not match its name)", path.display())]
    CacheCorrupt { path: PathBuf, hash: String },
    #[error("{}: cache object {hash} is missing", path.display())]
    CacheMissing { path: PathBuf, hash: String },
    #[error("{}: changed while pivot was reading it ({msg})", path.display())]
    SourceChanged { path: PathBuf, msg: String },
    #[error("{}: {msg}", path.display())]
    Manifest { path: PathBuf, msg: String },
    #[error("{}: unsafe path: {msg}", path.display())]
    UnsafePath { path: PathBuf, msg: String },
    #[error("{}: {field}: {msg}", path.display())]
    LockFile {
        path: PathBuf,
        field: String,
        msg: String,
    },
    #[error("{}: written by a newer pivot (schema {found}); upgrade pivot", path.display())]
    SchemaVersion { path: PathBuf, found: i64 },
    #[error("{}: {msg}", path.display())]
    Invalid { path: PathBuf, msg: String },
    /// A remote-storage failure; `msg` already names the remote (docs/remote.md).
    #[error("{msg}")]
    Remote { kind: RemoteKind, msg: String },
}

/// Which `pivot.exceptions.Remote*Error` a remote failure maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    Other,
    NotFound,
    Format,
    Auth,
    Corrupt,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn manifest(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Manifest {
            path: path.into(),
            msg: msg.into(),
        }
    }

    pub fn unsafe_path(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::UnsafePath {
            path: path.into(),
            msg: msg.into(),
        }
    }

    pub fn lock(
        path: impl Into<PathBuf>,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> Self {
        Error::LockFile {
            path: path.into(),
            field: field.into(),
            msg: msg.into(),
        }
    }

    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::CacheCorrupt { path, .. }
            | Error::CacheMissing { path, .. }
            | Error::SourceChanged { path, .. }
            | Error::Manifest { path, .. }
            | Error::UnsafePath { path, .. }
            | Error::LockFile { path, .. }
            | Error::SchemaVersion { path, .. }
            | Error::Invalid { path, .. } => path,
            Error::Remote { .. } => Path::new(""),
        }
    }
}

/// `result.at(path)?`: attach the path to a bare `io::Error`.
pub trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

mod py {
    use super::Error;
    use pyo3::exceptions::{
        PyFileExistsError, PyFileNotFoundError, PyIsADirectoryError, PyNotADirectoryError,
        PyOSError, PyPermissionError, PyValueError,
    };
    use pyo3::PyErr;

    pyo3::import_exception!(pivot.exceptions, CacheCorruptError);
    pyo3::import_exception!(pivot.exceptions, CacheMissingError);
    pyo3::import_exception!(pivot.exceptions, SourceChangedError);
    pyo3::import_exception!(pivot.exceptions, ManifestError);
    pyo3::import_exception!(pivot.exceptions, UnsafePathError);
    pyo3::import_exception!(pivot.exceptions, LockFileError);
    pyo3::import_exception!(pivot.exceptions, SchemaVersionError);
    pyo3::import_exception!(pivot.exceptions, RemoteError);
    pyo3::import_exception!(pivot.exceptions, RemoteNotFoundError);
    pyo3::import_exception!(pivot.exceptions, RemoteFormatError);
    pyo3::import_exception!(pivot.exceptions, RemoteAuthError);
    pyo3::import_exception!(pivot.exceptions, RemoteCorruptError);

    impl From<Error> for PyErr {
        fn from(e: Error) -> PyErr {
            to_pyerr(e)
        }
    }

    /// The one mapping from core errors to Python exceptions.
    pub fn to_pyerr(e: Error) -> PyErr {
        let msg = e.to_string();
        match e {
            Error::Io { path, source } => {
                let filename = path.into_os_string();
                match source.raw_os_error() {
                    Some(errno) => {
                        // (errno, strerror, filename): Python formats "[Errno N] msg: 'path'".
                        let strerror = std::io::Error::from_raw_os_error(errno).to_string();
                        let strerror = strerror
                            .split(" (os error")
                            .next()
                            .unwrap_or(&strerror)
                            .to_string();
                        let args = (errno, strerror, filename);
                        match errno {
                            libc::ENOENT => PyFileNotFoundError::new_err(args),
                            libc::EACCES | libc::EPERM => PyPermissionError::new_err(args),
                            libc::EEXIST => PyFileExistsError::new_err(args),
                            libc::EISDIR => PyIsADirectoryError::new_err(args),
                            libc::ENOTDIR => PyNotADirectoryError::new_err(args),
                            _ => PyOSError::new_err(args),
                        }
                    }
                    // Synthetic io errors (short read, invalid data...) carry no errno.
                    None => PyOSError::new_err(msg),
                }
            }
            Error::CacheCorrupt { .. } => CacheCorruptError::new_err(msg),
            Error::CacheMissing { .. } => CacheMissingError::new_err(msg),
            Error::SourceChanged { .. } => SourceChangedError::new_err(msg),
            Error::Manifest { .. } => ManifestError::new_err(msg),
            Error::UnsafePath { .. } => UnsafePathError::new_err(msg),
            Error::LockFile { .. } => LockFileError::new_err(msg),
            Error::SchemaVersion { .. } => SchemaVersionError::new_err(msg),
            Error::Invalid { .. } => PyValueError::new_err(msg),
            Error::Remote { kind, .. } => match kind {
                super::RemoteKind::Other => RemoteError::new_err(msg),
                super::RemoteKind::NotFound => RemoteNotFoundError::new_err(msg),
                super::RemoteKind::Format => RemoteFormatError::new_err(msg),
                super::RemoteKind::Auth => RemoteAuthError::new_err(msg),
                super::RemoteKind::Corrupt => RemoteCorruptError::new_err(msg),
            },
        }
    }
}

pub use py::to_pyerr;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_path() {
        let p = Path::new("/x/y.lock");
        let errs = [
            Error::io(p, io::Error::from_raw_os_error(libc::ENOENT)),
            Error::manifest(p, "symlink points outside"),
            Error::unsafe_path(p, "contains .."),
            Error::lock(p, "outs[\"a\"].hash", "not a 64-hex blake3 hash"),
            Error::SchemaVersion {
                path: p.into(),
                found: 2,
            },
        ];
        for e in errs {
            assert!(e.to_string().contains("/x/y.lock"), "{e}");
            assert_eq!(e.path(), p);
        }
    }

    #[test]
    fn io_context_attaches_path() {
        let r: io::Result<()> = Err(io::Error::from_raw_os_error(libc::EACCES));
        let e = r.at(Path::new("f")).unwrap_err();
        assert!(e.to_string().starts_with("f: "));
    }
}
