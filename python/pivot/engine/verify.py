"""`pivot verify`: the CI gate — every stage up to date and every cached output in the cache."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pivot.engine import plan
from pivot.engine.track import changed_tracked, tracked_files
from pivot.exceptions import StorageError

if TYPE_CHECKING:
    from pivot.engine.context import Context


@dataclass
class VerifyResult:
    stages: dict[str, str] = field(default_factory=dict)  # every checked stage -> reason
    stale: dict[str, str] = field(default_factory=dict)  # stage -> reason it is not up to date
    details: dict[str, list[str]] = field(default_factory=dict)  # stale stage -> explain lines
    missing: dict[str, list[str]] = field(default_factory=dict)  # stage/.pvt -> outputs absent
    # from the cache
    tracked: dict[str, str] = field(default_factory=dict)  # .pvt -> "<path> modified|missing"
    cache: CacheCheck | None = None  # `--cache`: objects re-hashed

    @property
    def ok(self) -> bool:
        return (
            not self.stale
            and not self.missing
            and not self.tracked
            and (self.cache is None or self.cache.ok)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "stages": {
                name: {
                    "up_to_date": name not in self.stale,
                    "reason": reason,
                    "missing": self.missing.get(name, []),
                }
                for name, reason in self.stages.items()
            },
            "stale": dict(self.stale),
            "missing": {k: list(v) for k, v in self.missing.items()},
            "tracked": dict(self.tracked),
            **({"cache": self.cache.to_json()} if self.cache is not None else {}),
        }


@dataclass
class CacheCheck:
    """`verify --cache`: objects reachable from the locks and `.pvt` files, re-hashed."""

    checked: int = 0  # objects re-hashed (manifests included)
    reachable: int = 0  # objects the locks and tracked files need
    sample: float | None = None  # percent of the file objects checked, None = all
    corrupt: dict[str, list[str]] = field(default_factory=dict)  # hash -> owners
    missing: dict[str, list[str]] = field(default_factory=dict)  # hash -> owners

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "reachable": self.reachable,
            "sample": self.sample,
            "corrupt": {h: list(o) for h, o in self.corrupt.items()},
            "missing": {h: list(o) for h, o in self.missing.items()},
        }

    def problems(self) -> list[str]:
        """One line per (object, owner): `<output path>: cache object <hash> corrupt`."""
        lines = []
        for what, table in (("corrupt", self.corrupt), ("missing", self.missing)):
            for h, owners in table.items():
                lines += [f"{owner}: cache object {h} {what}" for owner in owners]
        return lines


def verify(
    ctx: Context,
    stages: Sequence[str] | None = None,
    *,
    allow_missing: bool = False,
    remote_has: Callable[[str], bool] | None = None,
    cache: bool = False,
    sample: float | None = None,
    every_object: bool = False,
) -> VerifyResult:
    """Decide (`plan.decide`) and check cache presence of every cached output (and tracked file).

    `allow_missing`: outputs absent from the workspace do not make a stage stale, and objects
    absent from the local cache are accepted when `remote_has(hash)` says the remote has them.
    `cache`: also re-hash the reachable objects (`sample`: a random percent of the files;
    `every_object`: every object in the cache, referenced or not).
    """
    order = ctx.graph.order(list(stages) if stages else None)
    decisions = plan.decide(ctx, order, allow_missing=allow_missing)
    result = VerifyResult()

    def absent(info: Any) -> bool:
        if ctx.cache.contains(info):
            return False
        return not (allow_missing and remote_has is not None and remote_has(info["hash"]))

    for name in order:
        d = decisions[name]
        result.stages[name] = d.reason
        if d.stale:
            result.stale[name] = d.reason
            result.details[name] = list(d.details)
        if d.lock is None:
            continue
        gone = [
            k
            for k, e in sorted(d.lock["outs"].items())
            if e["cache"] and absent(plan.entry_info(e))
        ]
        if gone:
            result.missing[name] = gone
    if not stages:
        for t in tracked_files(ctx):
            if absent(t.info):
                result.missing[t.pvt] = [t.path]
        for t, why in changed_tracked(ctx):
            if not (why == "missing" and allow_missing):
                result.tracked[t.pvt] = f"{t.path} {why}"
    if cache:
        result.cache = check_cache(
            ctx, order, with_tracked=not stages, sample=sample, every=every_object
        )
    return result


def _reachable(
    ctx: Context, order: Sequence[str], with_tracked: bool
) -> list[tuple[str, bool, str]]:
    """(hash, is_dir, owner) of every cached output in the locks of `order` and, when
    `with_tracked`, of every `.pvt` file; owner is `<stage>: <path>` or `<file>.pvt: <path>`."""
    found: list[tuple[str, bool, str]] = []
    for name in order:
        lock, _problem = plan.read_stage_lock(ctx, name)
        if lock is None:
            continue
        for key, e in sorted(lock["outs"].items()):
            if e["cache"]:
                found.append((e["hash"], e["is_dir"], f"{name}: {key}"))
    if with_tracked:
        for t in tracked_files(ctx):
            found.append((t.info["hash"], t.info["is_dir"], f"{t.pvt}: {t.path}"))
    return found


def check_cache(
    ctx: Context,
    order: Sequence[str],
    *,
    with_tracked: bool = True,
    sample: float | None = None,
    rng: random.Random | None = None,
    every: bool = False,
) -> CacheCheck:
    """Re-hash the objects the locks (and tracked files) need: every directory manifest always
    (reading it checks its hash), then all file objects or a random `sample` percent of them.
    Each corrupt or missing object is reported with the outputs/tracked paths it belongs to.
    `every`: re-hash every object in the cache instead, referenced or not (an unreferenced
    one is reported with the owner `UNREFERENCED`)."""
    result = CacheCheck(sample=sample)
    owners: dict[str, list[str]] = {}
    files: set[str] = set()
    tops: set[str] = set()  # file outputs / tracked files (not inside a directory)
    for h, is_dir, owner in _reachable(ctx, order, with_tracked):
        owners.setdefault(h, []).append(owner)
        if not is_dir:
            files.add(h)
            tops.add(h)
            continue
        result.checked += 1
        if not ctx.cache.contains({"hash": h, "is_dir": False, "size": 0, "nfiles": 0}):
            result.missing.setdefault(h, []).append(owner)
            continue
        try:
            entries = ctx.cache.manifest(h)
        except StorageError:  # corrupt (hash mismatch) or unparsable manifest
            result.corrupt.setdefault(h, []).append(owner)
            continue
        base = owner if owner.endswith("/") else owner + "/"
        for entry in entries:
            if entry["link"] is None:
                owners.setdefault(entry["hash"], []).append(base + entry["path"])
                files.add(entry["hash"])
    result.reachable = len(owners)
    if every:
        _check_every(ctx, result, owners, tops)
        return result
    wanted = sorted(files)
    if sample is not None and wanted:
        k = min(len(wanted), max(1, math.ceil(len(wanted) * sample / 100)))
        wanted = sorted((rng or random.Random()).sample(wanted, k))
    if wanted:
        report = ctx.cache.verify(wanted)
        result.checked += report["checked"]
        for h in report["corrupt"]:
            result.corrupt[h] = owners.get(h, [])
        for h in report["missing"]:
            result.missing[h] = owners.get(h, [])
    return result


UNREFERENCED = "(not referenced)"


def _check_every(
    ctx: Context, result: CacheCheck, owners: dict[str, list[str]], tops: set[str]
) -> None:
    """Every object under `files/` re-hashed once (Rust); the reachable file objects that are
    not inside a directory checked for presence (a directory's files are checked by the
    all-objects pass through its manifest)."""
    report = ctx.cache.verify(None)
    result.checked = report["checked"]
    for h in report["corrupt"]:
        result.corrupt[h] = owners.get(h, [UNREFERENCED])
    for h in report["missing"]:
        result.missing[h] = owners.get(h, [UNREFERENCED])
    for h in sorted(tops):
        if h not in result.missing and not ctx.cache.contains(
            {"hash": h, "is_dir": False, "size": 0, "nfiles": 1}
        ):
            result.missing[h] = owners.get(h, [])
