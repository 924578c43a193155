"""`pivot verify`: the CI gate — every stage up to date and every cached output in the cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pivot.engine import plan, track

if TYPE_CHECKING:
    from pivot.engine.context import Context


@dataclass
class VerifyResult:
    stages: dict[str, str] = field(default_factory=dict)  # every checked stage -> reason
    stale: dict[str, str] = field(default_factory=dict)  # stage -> reason it is not up to date
    details: dict[str, list[str]] = field(default_factory=dict)  # stale stage -> explain lines
    missing: dict[str, list[str]] = field(default_factory=dict)  # stage/.pvt -> outputs absent
    # from the cache

    @property
    def ok(self) -> bool:
        return not self.stale and not self.missing

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
        }


def verify(
    ctx: Context,
    stages: Sequence[str] | None = None,
    *,
    allow_missing: bool = False,
    remote_has: Callable[[str], bool] | None = None,
) -> VerifyResult:
    """Decide (spec §5) and check cache presence of every cached output (and tracked file).

    `allow_missing`: outputs absent from the workspace do not make a stage stale, and objects
    absent from the local cache are accepted when `remote_has(hash)` says the remote has them.
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
        prune = [
            o.path for s in ctx.pipeline.stages.values() for o in s.outs if o.path.endswith("/")
        ]
        for pvt in track.find_pvt_files(ctx.root, prune):
            t = track.read_pvt(ctx.root, pvt)
            if absent(t.info):
                result.missing[pvt] = [t.path]
    return result
