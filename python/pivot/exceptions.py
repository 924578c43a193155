"""Every error pivot raises. The Rust core raises the storage ones too, by class name
(`rust/error.rs`)."""

from __future__ import annotations


class PivotError(Exception):
    """Base of all pivot errors; the CLI prints `Error: <message>` and exits 1."""


# --- storage (raised from Rust) -------------------------------------------------------------
class StorageError(PivotError):
    """A problem in the cache, index or on-disk formats."""


class CacheCorruptError(StorageError):
    """A cache object's content does not match its name."""


class CacheMissingError(StorageError):
    """A cache object that should exist does not."""


class SourceChangedError(StorageError):
    """A file changed while pivot was hashing or caching it."""


class ManifestError(StorageError):
    """A directory cannot be described by a manifest (link outside the tree, fifo, socket...)."""


class UnsafePathError(StorageError):
    """A path in a manifest, lock or config escapes its root or contains NUL/newline."""


class LockFileError(StorageError):
    """A lock file is malformed; the message names the file and the field."""


class SchemaVersionError(LockFileError):
    """A lock file was written by a newer pivot."""


class RemoteError(StorageError):
    """A remote (push/pull/fetch) operation failed; the message names the remote."""


class RemoteNotFoundError(RemoteError):
    """The remote is not configured, or its bucket/directory does not exist."""


class RemoteFormatError(RemoteError):
    """The remote was written in a layout version this pivot does not understand."""


class RemoteAuthError(RemoteError):
    """The remote refused the credentials (or none were found); names the sources tried."""


class RemoteCorruptError(RemoteError):
    """An object fetched from the remote does not hash to its name (never enters the cache)."""


# --- project and pipeline definition ------------------------------------------------------
class ProjectNotFoundError(PivotError):
    """No `.pivot/` directory above the current directory."""


class ConfigError(PivotError):
    """`.pivot/config.yaml`, `pivot.yaml` or `params.yaml` is invalid."""


class DiscoveryError(PivotError):
    """No pipeline file, or an ambiguous one, or `pipeline.py` without `pipeline`."""


class StageDefinitionError(PivotError):
    """A stage's signature, annotations or registration is invalid."""


class ParamsError(StageDefinitionError):
    """An effective parameter value is invalid for the stage's StageParams."""


class ValidationError(PivotError):
    """The pipeline graph is invalid (duplicates, overlaps, unsafe paths...)."""


class CyclicGraphError(ValidationError):
    """The pipeline contains a cycle."""


class DependencyNotFoundError(ValidationError):
    """A dependency is neither produced by a stage nor present on disk."""


class UnknownStageError(PivotError):
    """A stage named on the command line does not exist."""


class RevisionError(PivotError):
    """A git revision is unknown, or lacks a lock, file or cache object a command needs; the
    message names the revision and the path or hash."""


# --- execution ----------------------------------------------------------------------------
class ExecutionError(PivotError):
    """A stage could not be run or recorded."""


class OutputMissingError(ExecutionError):
    """A stage did not produce a declared output."""


class DependencyMissingError(ExecutionError):
    """A stage's dependency does not exist when it is about to run or be committed."""


class FingerprintWarning(UserWarning):
    """Part of a stage's code could not be fingerprinted; it is recorded as 'unknown'."""
