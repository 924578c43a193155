"""Project root discovery and the `.pivot/` layout (docs/architecture.md, "On-disk layout")."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pivot import config as config_mod
from pivot.exceptions import PivotError, ProjectNotFoundError, UnsafePathError

PIVOT_DIR = ".pivot"
GITIGNORE_TEXT = "cache/\nstate/\ntmp/\nconfig.local\n"
CACHE_DIR_ENV = "PIVOT_CACHE_DIR"


def find_root(start: Path) -> Path:
    """The top-most directory at or above `start` that contains `.pivot/`."""
    start = Path(start).resolve()
    found: Path | None = None
    for candidate in (start, *start.parents):
        if (candidate / PIVOT_DIR).is_dir():
            found = candidate
    if found is None:
        raise ProjectNotFoundError(
            f"not a pivot project (no {PIVOT_DIR}/ in {start} or any parent); run 'pivot init'"
        )
    return found


@dataclass(frozen=True)
class Project:
    """A project root, its validated config and the paths of its `.pivot/` layout."""

    root: Path
    config: config_mod.Config
    cache_dir: Path

    @classmethod
    def load(cls, root: Path, cache_dir: str | Path | None = None) -> Project:
        """Open the project at `root`. The cache directory: `cache_dir` (e.g. from --cache-dir),
        else env `PIVOT_CACHE_DIR`, else the config's `cache.dir`, else `.pivot/cache`. The first
        two are relative to the current directory (like any path typed in a shell), the config's
        to the project root."""
        root = Path(root).resolve()
        cfg = config_mod.load_config(root / PIVOT_DIR)
        from_env = os.environ.get(CACHE_DIR_ENV) or None
        chosen = cache_dir if cache_dir is not None else from_env
        if chosen is not None:
            resolved = Path(os.path.abspath(os.path.expanduser(str(chosen))))
        elif cfg.cache_dir is None:
            resolved = root / PIVOT_DIR / "cache"
        else:
            path = Path(os.path.expanduser(cfg.cache_dir))
            resolved = path if path.is_absolute() else root / path
        return cls(root=root, config=cfg, cache_dir=Path(os.path.normpath(resolved)))

    @property
    def pivot_dir(self) -> Path:
        return self.root / PIVOT_DIR

    @property
    def stages_dir(self) -> Path:
        return self.pivot_dir / "stages"

    @property
    def state_dir(self) -> Path:
        return self.pivot_dir / "state"

    @property
    def tmp_dir(self) -> Path:
        return self.pivot_dir / "tmp"

    @property
    def locks_dir(self) -> Path:
        return self.tmp_dir / "locks"

    @property
    def runs_dir(self) -> Path:
        return self.cache_dir / "runs"

    def relpath(self, path: str | os.PathLike[str]) -> str:
        """Project-relative POSIX path of `path` (relative paths are taken from the cwd)."""
        absolute = Path(os.path.abspath(path))
        for candidate in (absolute, absolute.resolve()):
            try:
                rel = candidate.relative_to(self.root)
            except ValueError:
                continue
            return rel.as_posix()
        raise UnsafePathError(f"{path}: outside the project {self.root}")


def open_project(cwd: Path | None = None, cache_dir: str | Path | None = None) -> Project:
    """The project containing `cwd` (default: the current directory), without its pipeline:
    for commands that read locks, the cache or git only (`history`, `get`, `diff`)."""
    return Project.load(find_root(Path.cwd() if cwd is None else Path(cwd)), cache_dir)


def init(root: Path, force: bool = False) -> Project:
    """Create `.pivot/` with its `.gitignore` and `config.yaml`; an existing one needs `force`."""
    root = Path(root).resolve()
    pivot_dir = root / PIVOT_DIR
    if pivot_dir.exists() and not force:
        raise PivotError(f"{pivot_dir} already exists (use --force to re-initialize)")
    from pivot.storage.files import write_atomic

    pivot_dir.mkdir(parents=True, exist_ok=True)
    (pivot_dir / "stages").mkdir(exist_ok=True)
    write_atomic(pivot_dir / ".gitignore", GITIGNORE_TEXT.encode())
    cfg = pivot_dir / config_mod.CONFIG_FILE
    if not cfg.exists():
        # --force keeps a user's config; it only repairs what is missing.
        write_atomic(cfg, config_mod.DEFAULT_CONFIG_TEXT.encode())
    return Project.load(root)
