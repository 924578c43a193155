"""Change-detection matrix (docs/architecture.md, "Fingerprinting"): each case is a real edit
to real files of a temp project, fingerprinted before and after in fresh interpreters; exactly
the stages that reach the edited code must change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import _fp_base_project as base_project
import _fp_harness as harness
import pytest

P, H, M = "pipeline.py", "helpers.py", "models.py"

# (case id, [(file, old, new), ...], stages whose fingerprint must change)
CASES: list[tuple[str, list[tuple[str, str, str]], set[str]]] = [
    # --- edits that change behaviour -----------------------------------------------------
    ("stage_body", [(P, "total = local_helper(1)", "total = local_helper(2)")], {"s_basic"}),
    (
        "stage_rename_local",
        [(P, "total = local_helper(1)\n    print(total)", "t = local_helper(1)\n    print(t)")],
        {"s_basic"},
    ),
    ("helper_in_pipeline", [(P, "return x + LIMIT", "return x - LIMIT")], {"s_basic"}),
    ("const_in_pipeline", [(P, "LIMIT = 10", "LIMIT = 11")], {"s_basic"}),
    (
        "const_rebound_later",
        [(P, "UNUSED = 5\n", "UNUSED = 5\nLIMIT = 12\n")],
        {"s_basic"},
    ),
    (
        "helper_in_module",
        [(H, "return x * FACTOR", "return x * FACTOR + 0")],
        {"s_helpers", "s_closure"},
    ),
    ("const_in_module", [(H, "FACTOR = 2", "FACTOR = 3")], {"s_helpers", "s_closure"}),
    ("dict_const_value", [(H, '"a": [1, 2, 3]', '"a": [1, 2, 4]')], {"s_helpers"}),
    ("nested_tuple_value", [(H, '"b": (4, 5)', '"b": (4, 6)')], {"s_helpers"}),
    (
        "dict_key_order",
        [(H, '{"a": [1, 2, 3], "b": (4, 5)}', '{"b": (4, 5), "a": [1, 2, 3]}')],
        {"s_helpers"},
    ),
    ("set_const_value", [(H, 'TAGS = {"x", "y", "z"}', 'TAGS = {"x", "y", "w"}')], {"s_helpers"}),
    ("transitive_a_b_c", [(H, "return x - 3", "return x - 4")], {"s_helpers"}),
    ("transitive_middle", [(H, "return chain_c(x) * 2", "return chain_c(x) * 3")], {"s_helpers"}),
    ("pkg_sub_func_chain", [("pkg/sub.py", "return x + 1", "return x + 2")], {"s_pkg"}),
    ("import_pkg_sub_as", [("pkg/sub2.py", "return x + 2", "return x + 3")], {"s_pkg"}),
    ("from_import_as", [("aliasmod.py", "return x * 5", "return x * 6")], {"s_pkg"}),
    ("closure_variable", [(P, "adder = make_adder(5)", "adder = make_adder(6)")], {"s_closure"}),
    ("closure_factory_code", [(P, "return x + k", "return x + k + 0")], {"s_closure"}),
    ("default_argument", [(P, "step=3", "step=4")], {"s_closure"}),
    (
        "partial_args",
        [(P, "partial(helpers.scale, 3)", "partial(helpers.scale, 4)")],
        {"s_closure"},
    ),
    (
        "decorator_edit",
        [
            (
                H,
                "return func(*args, **kwargs)",
                "result = func(*args, **kwargs)\n        return result",
            )
        ],
        {"s_closure"},
    ),
    (
        "decorated_function_edit",
        [(P, "return x + 1\n\n\nclass Params", "return x + 2\n\n\nclass Params")],
        {"s_closure"},
    ),
    (
        "class_method_via_instance",
        [(M, "return self.w * x + self.bias", "return self.w * x - self.bias")],
        {"s_class"},
    ),
    ("class_attribute", [(M, "bias = 1", "bias = 2")], {"s_class"}),
    ("class_init", [(M, "self.w = w", "self.w = w * 2")], {"s_class"}),
    ("params_default", [(P, "lr: float = 0.1", "lr: float = 0.2")], {"s_params"}),
    (
        "params_new_field",
        [(P, "epochs: int = 3\n", "epochs: int = 3\n    momentum: float = 0.9\n")],
        {"s_params"},
    ),
    ("loader_builtin_config", [(P, 'loaders.CSV(sep=",")', 'loaders.CSV(sep=";")')], {"s_loader"}),
    ("loader_user_config", [(P, "IndentJSON(indent=2)", "IndentJSON(indent=4)")], {"s_loader"}),
    (
        "loader_user_code",
        [
            (
                P,
                "json.dumps(value, indent=self.indent)",
                "json.dumps(value, indent=self.indent, sort_keys=True)",
            )
        ],
        {"s_loader"},
    ),
    ("lambda_edit", [(P, "lambda x: x * x", "lambda x: x * x * x")], {"s_misc"}),
    ("exec_code_edit", [(P, "return x * 7", "return x * 8")], {"s_misc"}),
    ("enum_value", [(P, "RED = 1", "RED = 3")], {"s_misc"}),
    ("global_rebinding", [(P, "handler = handler_v1", "handler = handler_v2")], {"s_misc"}),
    (
        "rebound_target_edit",
        [(P, "def handler_v1(x):\n    return x\n", "def handler_v1(x):\n    return x + 1\n")],
        {"s_misc"},
    ),
    ("recursion", [(P, "recurse(n - 1) + 1", "recurse(n - 1) + 2")], {"s_misc"}),
    (
        "mutual_recursion",
        [(P, "return 1 if n <= 0 else ping(n - 1)", "return 2 if n <= 0 else ping(n - 1)")],
        {"s_misc"},
    ),
    ("dataclass_instance_const", [(P, "Settings(depth=4)", "Settings(depth=5)")], {"s_misc"}),
    ("dataclass_class_default", [(P, 'name: str = "s"', 'name: str = "t"')], {"s_misc"}),
    (
        "unknown_object_type",
        [(P, "LOCK = threading.Lock()", "LOCK = threading.RLock()")],
        {"s_lock"},
    ),
    ("other_stage_helper", [(H, "return x + 100", "return x + 101")], {"s_other"}),
    # --- edits that must change nothing --------------------------------------------------
    ("comment_in_body", [(P, "total = local_helper(1)", "total = local_helper(1)  # one")], set()),
    ("comment_line", [(H, "def chain_c(x):\n", "def chain_c(x):\n    # subtract three\n")], set()),
    ("docstring_added", [(H, "def scale(x):\n", 'def scale(x):\n    """Scale x."""\n')], set()),
    (
        "docstring_edited",
        [(H, '"""Helpers used by several stages."""', '"""Other words."""')],
        set(),
    ),
    (
        "formatting",
        [
            (
                P,
                "print(adder(1), with_default(2), partial_scale(), decorated(3))",
                "print(\n        adder( 1 ),\n        with_default(2),\n        partial_scale(),\n        decorated(3),\n    )",
            )
        ],
        set(),
    ),
    ("blank_lines", [(P, "LIMIT = 10\n", "\n\n\nLIMIT = 10\n")], set()),
    ("blank_lines_in_module", [(H, "import functools\n", "import functools\n\n\n\n")], set()),
    ("unrelated_function", [(H, "return x**2", "return x**3")], set()),
    ("unused_const_pipeline", [(P, "UNUSED = 5", "UNUSED = 6")], set()),
    ("unused_const_module", [(H, "UNUSED_CONST = 1", "UNUSED_CONST = 2")], set()),
    ("unused_function_in_used_module", [("pkg/sub.py", "return x + 9", "return x + 10")], set()),
    ("unused_class_in_used_module", [(M, "return 1", "return 2")], set()),
    (
        "reorder_unrelated",
        [
            (
                H,
                "def unrelated(x):\n    return x**2\n\n\ndef only_b(x):\n    return x + 100\n",
                "def only_b(x):\n    return x + 100\n\n\ndef unrelated(x):\n    return x**2\n",
            )
        ],
        set(),
    ),
    (
        "new_unrelated_function",
        [(P, "UNUSED = 5\n", "UNUSED = 5\n\n\ndef extra():\n    return 1\n")],
        set(),
    ),
    ("unused_rebinding_target", [(P, "return -x", "return -x - 1")], set()),
    (
        "annotation_only",
        [(P, "def s_params(params: Params):", "def s_params(params: 'Params'):")],
        set(),
    ),
]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("matrix")
    dirs = {
        case_id: harness.write_project(root / case_id, base_project.FILES)
        for case_id, _, _ in CASES
    }
    before = harness.fingerprint_projects(list(dirs.values()), hash_seed="1")
    for case_id, edits, _ in CASES:
        harness.apply_edits(dirs[case_id], edits)
    after = harness.fingerprint_projects(list(dirs.values()), hash_seed="2")
    return {case_id: (before[str(d)], after[str(d)]) for case_id, d in dirs.items()}


def test_matrix_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("case_id", "edits", "expected"), CASES, ids=[c[0] for c in CASES])
def test_change_detection(
    matrix: dict[str, Any], case_id: str, edits: list[Any], expected: set[str]
) -> None:
    before, after = matrix[case_id]
    assert set(before["stages"]) == set(base_project.STAGES)
    assert harness.changed_stages(before["stages"], after["stages"]) == expected


def test_unknown_object_warns_and_is_recorded(matrix: dict[str, Any]) -> None:
    before, _ = matrix["stage_body"]
    assert "unknown:_pivot_pipeline.LOCK" in before["stages"]["s_lock"]
    assert any("_pivot_pipeline.LOCK" in w and "_thread.lock" in w for w in before["warnings"])
    # Only the stage that reaches it carries the entry.
    others = [s for s, m in before["stages"].items() if s != "s_lock"]
    assert not any(k.startswith("unknown:") for s in others for k in before["stages"][s])


def test_manifest_names_the_changed_entry(matrix: dict[str, Any]) -> None:
    before, after = matrix["transitive_a_b_c"]
    b, a = before["stages"]["s_helpers"], after["stages"]["s_helpers"]
    assert {k for k in b if b[k] != a.get(k)} == {"func:helpers.chain_c"}
    before, after = matrix["global_rebinding"]
    b, a = before["stages"]["s_misc"], after["stages"]["s_misc"]
    assert "func:_pivot_pipeline.handler_v1" in b and "func:_pivot_pipeline.handler_v2" in a


def test_manifest_entries(matrix: dict[str, Any]) -> None:
    stages = matrix["stage_body"][0]["stages"]
    assert "const:_pivot_pipeline.LIMIT" in stages["s_basic"]
    assert "func:_pivot_pipeline.local_helper" in stages["s_basic"]
    assert {"const:helpers.TABLE", "const:helpers.TAGS", "func:helpers.chain_c"} <= set(
        stages["s_helpers"]
    )
    assert "func:helpers.traced.<locals>.wrapper" in stages["s_closure"]
    assert "func:_pivot_pipeline.decorated" in stages["s_closure"]
    assert "obj:_pivot_pipeline.partial_scale" in stages["s_closure"]
    assert "params:_pivot_pipeline.Params" in stages["s_params"]
    assert {"loader:dep:data/in.csv", "loader:out:out/result.json"} <= set(stages["s_loader"])
    assert "class:_pivot_pipeline.IndentJSON" in stages["s_loader"]
    assert "class:models.Model" in stages["s_class"]
    # Library code (pivot, stdlib) is never an entry.
    for manifest in stages.values():
        assert not any(
            ".pivot." in k or k.startswith(("func:pivot.", "class:pivot.")) for k in manifest
        )


def test_fresh_processes_agree_across_hash_seeds(matrix: dict[str, Any], tmp_path: Path) -> None:
    d = harness.write_project(tmp_path / "p", base_project.FILES)
    runs = [harness.fingerprint_projects([d], hash_seed=seed)[str(d)] for seed in ("3", "random")]
    assert runs[0]["stages"] == runs[1]["stages"]
    # And equal to the unedited projects fingerprinted in the matrix's first process.
    assert runs[0]["stages"] == matrix["stage_body"][0]["stages"]


def test_pipeline_run_by_path_is_tracked(matrix: dict[str, Any], tmp_path: Path) -> None:
    """pipeline.py executed under another module name (runpy, not in sys.modules) is user code
    whose helpers, constants and classes are found from the functions' globals."""
    d = harness.write_project(tmp_path / "p", base_project.FILES)
    code = (
        "import json, runpy, sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        f"sys.path.insert(0, {str(d)!r})\n"
        "from pivot.fingerprint import stage_fingerprint\n"
        f"ns = runpy.run_path({str(d / 'pipeline.py')!r})\n"
        "print(json.dumps({n: stage_fingerprint(s) for n, s in ns['pipeline'].stages.items()}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(harness.REPO_PYTHON), "PYTHONDONTWRITEBYTECODE": "1"},
        check=True,
    )
    by_path = json.loads(proc.stdout)
    loaded = matrix["stage_body"][0]["stages"]
    for stage, manifest in loaded.items():
        renamed = {k.replace("_pivot_pipeline.", "<run_path>."): v for k, v in manifest.items()}
        assert set(by_path[stage]) == set(renamed), stage
    assert by_path["s_basic"] == {
        k.replace("_pivot_pipeline.", "<run_path>."): v for k, v in loaded["s_basic"].items()
    }
