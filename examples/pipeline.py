"""Example pipeline: split a text into shards, count words per shard, summarize.

    data/corpus.txt --shard--> data/shards/ (a directory output, one file per shard)
                    --count--> data/counts.json
                    --summarize--> metrics/summary.json (a metric, kept in git)

Run it with `pivot repro` from this directory (after `pivot init`), or see run_demo.py.
"""

from __future__ import annotations

import collections
import pathlib
from typing import Annotated, Any

from pivot import loaders, outputs
from pivot.pipeline import Pipeline
from pivot.stage_def import StageParams


class ShardParams(StageParams):
    shards: int = 4


class SummaryParams(StageParams):
    top: int = 5


def normalize(word: str) -> str:
    """Helper reached from a stage: editing it makes `count` re-run (code fingerprinting)."""
    return word.strip(".,;:!?\"'()").lower()


def shard(
    params: ShardParams,
    corpus: Annotated[str, outputs.Dep("data/corpus.txt", loaders.Text())],
) -> Annotated[dict[str, str], outputs.DirectoryOut("data/shards/", loaders.Text())]:
    """Split the corpus's lines round-robin into `params.shards` files."""
    lines = [line for line in corpus.splitlines() if line.strip()]
    buckets: list[list[str]] = [[] for _ in range(params.shards)]
    for i, line in enumerate(lines):
        buckets[i % params.shards].append(line)
    return {f"shard-{i:02d}.txt": "\n".join(b) + "\n" for i, b in enumerate(buckets)}


def count(
    shards: Annotated[pathlib.Path, outputs.Dep("data/shards/", loaders.PathOnly())],
) -> Annotated[dict[str, int], outputs.Out("data/counts.json", loaders.JSON())]:
    """Word counts over every shard."""
    counts: collections.Counter[str] = collections.Counter()
    for path in sorted(pathlib.Path(shards).iterdir()):
        for word in path.read_text(encoding="utf-8").split():
            if normalize(word):
                counts[normalize(word)] += 1
    return dict(counts)


def summarize(
    params: SummaryParams,
    counts: Annotated[dict[str, int], outputs.Dep("data/counts.json", loaders.JSON())],
) -> Annotated[dict[str, Any], outputs.Metric("metrics/summary.json")]:
    """Totals and the most frequent words."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "distinct_words": len(counts),
        "total_words": sum(counts.values()),
        "top": [{"word": w, "count": n} for w, n in ranked[: params.top]],
    }


pipeline = Pipeline("example")
pipeline.register(shard)
pipeline.register(count)
pipeline.register(summarize)
