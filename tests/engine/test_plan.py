"""Decision reasons (docs/architecture.md, "Deciding what runs"), one by one, on a real two-stage project."""

from __future__ import annotations

import logging
import os

import pytest
from _engine_helpers import Proj, statuses

from pivot.engine import plan

TWO_STAGES = """
def shout(text):
    return text.upper()


class PrepParams(StageParams):
    times: int = 1


def prep(
    params: PrepParams,
    raw: Annotated[str, outputs.Dep("data/raw.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("out/clean.txt", loaders.Text())]:
    _mark("prep")
    return shout(raw) * params.times


class TrainOut(TypedDict):
    model: Annotated[dict, outputs.Out("out/model.json", loaders.JSON())]
    metrics: Annotated[dict, outputs.Metric("METRICS_PATH")]


def train(clean: Annotated[str, outputs.Dep("out/clean.txt", loaders.Text())]) -> TrainOut:
    _mark("train")
    return {"model": {"n": len(clean)}, "metrics": {"len": len(clean)}}


pipeline = Pipeline("t")
pipeline.register(prep)
pipeline.register(train)
"""


def two_stages(
    proj: Proj, *, shout_body: str = "text.upper()", metrics: str = "out/m.json"
) -> None:
    body = TWO_STAGES.replace("text.upper()", shout_body).replace("METRICS_PATH", metrics)
    proj.pipeline(body)


@pytest.fixture
def ran(proj: Proj) -> Proj:
    """The two-stage project after one successful run."""
    two_stages(proj)
    proj.write("data/raw.txt", "hello\n")
    summary, sink = proj.repro()
    assert statuses(summary) == {
        "prep": ("ran", "No previous run"),
        "train": ("ran", "No previous run"),
    }
    assert [e[0] for e in sink.events] == ["start", "complete", "start", "complete"]
    assert sink.events[0] == ("start", "prep", 1, 2)
    return proj


def test_first_run_records_then_everything_is_unchanged(ran: Proj) -> None:
    lock = ran.lock("train")
    assert lock is not None
    assert set(lock["outs"]) == {"out/model.json", "out/m.json"}
    assert lock["outs"]["out/m.json"]["cache"] is False
    assert lock["deps"] == {"out/clean.txt": ran.lock("prep")["outs"]["out/clean.txt"]["hash"]}  # type: ignore[index]
    assert len(ran.run_entries()) == 2
    assert ran.reasons() == {"prep": "unchanged", "train": "unchanged"}

    summary, _ = ran.repro()
    assert statuses(summary) == {
        "prep": ("skipped", "unchanged"),
        "train": ("skipped", "unchanged"),
    }
    assert (ran.marks("prep"), ran.marks("train")) == (1, 1)


def test_code_change_and_upstream_stale(ran: Proj) -> None:
    two_stages(ran, shout_body="text.lower()")
    d = ran.decide()
    assert d["prep"].reason == "Code changed"
    assert any("shout" in line for line in d["prep"].details), d["prep"].details
    assert d["train"].reason == "Upstream stale (prep)"
    assert d["train"].state is None
    # reverting the edit makes it unchanged again (fingerprint, not mtime)
    two_stages(ran)
    assert ran.reasons() == {"prep": "unchanged", "train": "unchanged"}


def test_params_change(ran: Proj) -> None:
    ran.write("params.yaml", "prep:\n  times: 2\n")
    d = ran.decide()
    assert d["prep"].reason == "Params changed"
    assert "param times: 1 -> 2" in d["prep"].details
    os.unlink(ran.root / "params.yaml")
    assert ran.reasons()["prep"] == "unchanged"


def test_dep_change(ran: Proj) -> None:
    ran.write("data/raw.txt", "HELLO again\n")
    d = ran.decide()
    assert d["prep"].reason == "Input dependencies changed"
    assert "dep changed: data/raw.txt" in d["prep"].details
    ran.write("data/raw.txt", "hello\n")
    assert ran.reasons()["prep"] == "unchanged"


def test_out_path_change(ran: Proj) -> None:
    two_stages(ran, metrics="out/metrics2.json")
    d = ran.decide()
    assert d["prep"].reason == "unchanged"
    assert d["train"].reason == "Output paths changed"
    assert "out added: out/metrics2.json" in d["train"].details


def test_deleted_output_is_restored_from_cache(ran: Proj) -> None:
    model = ran.root / "out/model.json"
    before = model.read_text()
    model.unlink()
    d = ran.decide()
    assert d["train"].reason == "Outputs missing or modified"
    assert d["train"].will_run and d["train"].restore
    assert d["train"].restore_paths == ["out/model.json"]
    summary, _ = ran.repro()
    assert statuses(summary)["train"] == ("skipped", "restored from cache")
    assert model.read_text() == before
    assert ran.marks("train") == 1


def test_edited_output_restored_and_downstream_not_stale(ran: Proj) -> None:
    clean = ran.root / "out/clean.txt"
    before = clean.read_text()
    ran.write("out/clean.txt", "tampered\n")
    d = ran.decide()
    assert (d["prep"].reason, d["prep"].restore) == ("Outputs missing or modified", True)
    assert d["train"].reason == "unchanged"  # it will see the restored bytes
    summary, _ = ran.repro()
    assert statuses(summary) == {
        "prep": ("skipped", "restored from cache"),
        "train": ("skipped", "unchanged"),
    }
    assert clean.read_text() == before
    assert ran.marks("prep") == 1


def test_edited_metric_reruns(ran: Proj) -> None:
    ran.write("out/m.json", '{"len": 0}')
    d = ran.decide()
    assert (d["train"].reason, d["train"].restore) == ("Outputs missing or modified", False)
    summary, _ = ran.repro()
    assert statuses(summary)["train"][0] == "ran"
    assert ran.marks("train") == 2


def test_run_cache_after_revert_and_force(ran: Proj) -> None:
    ran.write("data/raw.txt", "other\n")
    summary, _ = ran.repro()
    assert statuses(summary) == {
        "prep": ("ran", "Input dependencies changed"),
        "train": ("ran", "Upstream stale (prep)"),
    }
    assert ran.read("out/clean.txt") == "OTHER\n"
    ran.write("data/raw.txt", "hello\n")
    summary, _ = ran.repro()
    assert statuses(summary) == {
        "prep": ("skipped", "unchanged (run cache)"),
        "train": ("skipped", "unchanged (run cache)"),
    }
    assert ran.read("out/clean.txt") == "HELLO\n"
    assert (ran.marks("prep"), ran.marks("train")) == (2, 2)
    assert ran.reasons() == {"prep": "unchanged", "train": "unchanged"}

    summary, _ = ran.repro(force=True)
    assert statuses(summary) == {"prep": ("ran", "Forced"), "train": ("ran", "Forced")}
    assert (ran.marks("prep"), ran.marks("train")) == (3, 3)


def test_force_and_missing_lock_decisions(ran: Proj) -> None:
    assert set(ran.reasons(force=True).values()) == {"Forced"}
    os.unlink(ran.root / ".pivot/stages/prep.lock")
    d = ran.decide()
    assert d["prep"].reason == "No previous run"
    assert d["train"].reason == "Upstream stale (prep)"


def test_corrupt_lock_is_no_previous_run(ran: Proj, caplog: pytest.LogCaptureFixture) -> None:
    (ran.root / ".pivot/stages/train.lock").write_text("garbage{{{\n")
    caplog.set_level(logging.WARNING, logger="pivot")
    d = ran.decide()
    assert d["train"].reason == "No previous run"
    assert "train.lock" in caplog.text


def test_newer_lock_schema_is_an_error(ran: Proj) -> None:
    from pivot.exceptions import SchemaVersionError

    path = ran.root / ".pivot/stages/train.lock"
    text = path.read_text()
    path.write_text(text.replace('"schema_version": 1', '"schema_version": 99'))
    if path.read_text() == text:
        pytest.skip("lock format does not spell schema_version as JSON")
    with pytest.raises(SchemaVersionError, match="upgrade pivot"):
        ran.decide()


def test_decide_restricts_to_order(ran: Proj) -> None:
    ran.write("data/raw.txt", "changed\n")
    ctx = ran.ctx()
    d = plan.decide(ctx, ["train"])  # exact: prep not in the plan, so train sees disk as is
    assert d["train"].reason == "unchanged"
