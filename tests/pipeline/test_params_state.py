"""params.yaml's parsed form is kept in .pivot/state/params.json and never outlives an edit."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pivot.pipeline import params as params_mod
from pivot.pipeline.params_state import FILE_NAME

READ = (
    "import json, sys; from pathlib import Path; "
    "from pivot.pipeline.params import read_params_file; "
    "d = read_params_file(Path(sys.argv[1])); "
    "print(json.dumps([d, 'yaml' in sys.modules], default=str))"
)


def read_in_new_process(root: Path) -> tuple[dict, bool]:
    out = subprocess.run(
        [sys.executable, "-c", READ, str(root)], capture_output=True, text=True, check=True
    )
    data, yaml_loaded = json.loads(out.stdout)
    return data, yaml_loaded


def make_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / ".pivot").mkdir(parents=True)
    return root


def settle() -> None:
    # A params.yaml changed within the last 2 s is never remembered (racily clean).
    time.sleep(params_mod.params_state.RACY_NS / 1e9 + 0.1)


def test_unchanged_params_skip_yaml_and_any_edit_is_seen(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    f = project / "params.yaml"
    f.write_text("train:\n  lr: 0.2\n")
    assert read_in_new_process(project) == ({"train": {"lr": 0.2}}, True)
    assert not (project / ".pivot" / "state" / FILE_NAME).exists(), "racy: not remembered"
    settle()
    assert read_in_new_process(project) == ({"train": {"lr": 0.2}}, True)
    assert (project / ".pivot" / "state" / FILE_NAME).exists()
    assert read_in_new_process(project) == ({"train": {"lr": 0.2}}, False), "served from state"

    # Same size, mtime put back: the ctime still moves, so the edit is seen.
    st = f.stat()
    f.write_text("train:\n  lr: 0.3\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert read_in_new_process(project) == ({"train": {"lr": 0.3}}, True)


def test_data_json_cannot_carry_and_corrupt_state_fall_back_to_yaml(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    f = project / "params.yaml"
    f.write_text("train:\n  start: 2024-01-02\n  lr: 0.1\n")
    settle()
    params_mod._params_file_cache.clear()
    assert params_mod.read_params_file(project) == {
        "train": {"start": dt.date(2024, 1, 2), "lr": 0.1}
    }
    assert not (project / ".pivot" / "state" / FILE_NAME).exists(), "a date is not JSON"

    f.write_text("train:\n  lr: 0.1\n")
    settle()
    params_mod._params_file_cache.clear()
    params_mod.read_params_file(project)
    state = project / ".pivot" / "state" / FILE_NAME
    assert state.exists()
    state.write_text('{"version": 1, "stat": [')
    assert read_in_new_process(project) == ({"train": {"lr": 0.1}}, True)


def test_outside_a_pivot_project_nothing_is_created(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("train:\n  lr: 0.1\n")
    settle()
    params_mod._params_file_cache.clear()
    assert params_mod.read_params_file(tmp_path) == {"train": {"lr": 0.1}}
    assert not (tmp_path / ".pivot").exists()
