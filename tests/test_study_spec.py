"""The study-file schema: strict, every error located, validate exits 2, run writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import write_study

from dynamo_tune.cli.main import main
from dynamo_tune.errors import SpecError
from dynamo_tune.study.spec.loading import load_spec, parse_spec


def _problems(path: Path) -> str:
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert exc.value.exit_code == 2
    return str(exc.value)


def test_base_study_is_valid_and_hash_ignores_comments(tmp_path: Path) -> None:
    path = write_study(tmp_path)
    loaded = load_spec(path)
    assert loaded.spec.study.name == "fake"
    assert loaded.base_dir == tmp_path.resolve()
    commented = parse_spec("# a comment\n" + path.read_text(), path)
    assert commented.sha256 == loaded.sha256
    changed = load_spec(write_study(tmp_path, {"study.n_trials": 9}, name="b.yaml"))
    assert changed.sha256 != loaded.sha256


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"search_space/router.temperature/low": -1.0}, "search_space.router.temperature.low:"),
        (
            {"search_space/router.temperature/lo": 0.1},
            "search_space.router.temperature.lo: unknown key",
        ),
        ({"study.n_trails": 3}, "study.n_trails: unknown key"),
        ({"study.n_trials": "many"}, "study.n_trials: Input should be a valid integer"),
        ({"search_space/router.temperature/high": -0.5}, "search_space.router.temperature.high"),
        (
            {"search_space/router.bogus": {"type": "float", "low": 0, "high": 1}},
            "no searchable field 'bogus'",
        ),
        (
            {"search_space/gpu.count": {"type": "int", "low": 1, "high": 2}},
            "search_space.gpu.count:",
        ),
        (
            {"search_space/router.mode/choices": ["kv", "teleport"]},
            "search_space.router.mode.choices.1",
        ),
        (
            {"objective.kv_weight": 0.5},
            "objective: `kv_weight + ttft_weight + itl_weight == 1` must hold",
        ),
        ({"objective.constraints": [{"metric": "ttft_p95_seconds"}]}, "needs `max` or `min`"),
        ({"study.baseline": {"router.mode": "teleport"}}, "study.baseline.router.mode"),
        ({"study.baseline": {"router.temperature": 5.0}}, "outside the searched range"),
        ({"study.sampler": {"name": "grid"}}, "the grid sampler needs a finite set"),
        ({"workload.kind": "telepathy"}, "workload"),
        ({"deployment.router": {"mode": "kv", "temperature": -2}}, "deployment.router.temperature"),
        (
            {"search_space/router.temperature/when": {"router.bogus": "kv"}},
            "search_space.router.temperature.when.router.bogus: unknown parameter 'router.bogus'",
        ),
        (
            {"search_space/router.temperature/when": {"router.mode": "teleport"}},
            "search_space.router.temperature.when.router.mode: 'teleport' is not a value "
            "router.mode can take",
        ),
        (
            {"search_space/router.temperature/when": {"router.mode": "round-robin"}},
            "search_space.router.temperature: never suggested: no value of router.mode",
        ),
        (
            {"study.enqueue": ["agentic"], "search_space/router.prefill_load_scale/high": 2.0},
            "study.enqueue.0 (agentic): router.prefill_load_scale = 4.0 is outside the searched "
            "range of router.prefill_load_scale",
        ),
        (
            {"study.enqueue": [{"router.bogus": 1}]},
            "study.enqueue.0 (enqueue[0]): router has no field 'bogus'",
        ),
        ({"study.enqueue": ["teleport"]}, "study.enqueue.0"),
        (
            {"search_space/router.mode": None, "deployment.router": {"mode": "round-robin"}},
            "search_space.router.overlap_score_credit: Dynamo does not use it in router mode "
            "'round-robin' (deployment.router.mode)",
        ),
        ({"study.confirm": {"repeats": 1}}, "study.confirm.repeats"),
    ],
)
def test_each_error_is_located(tmp_path: Path, changes: dict[str, object], expected: str) -> None:
    assert expected in _problems(write_study(tmp_path, changes))


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    text = _problems(
        write_study(tmp_path, {"study.n_trails": 3, "search_space/router.mode/kind": "x"})
    )
    assert "2 problems" in text
    assert "study.n_trails: unknown key" in text
    assert "search_space.router.mode.kind: unknown key" in text


def test_empty_search_space_is_an_error(tmp_path: Path) -> None:
    text = _problems(write_study(tmp_path, {"search_space": {}}))
    assert "search_space: Dictionary should have at least 1 item" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("study: {name: x\n", "invalid YAML"),
        ("- a\n- b\n", "a study file is a mapping"),
        ("study: {}\nstudy: {}\n", "duplicate key 'study'"),
    ],
)
def test_bad_yaml_is_located(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert expected in _problems(path)


def test_validate_exits_2_and_run_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, {"search_space/router.temperature/low": -1.0})
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "search_space.router.temperature.low: Input should be greater than or equal to 0" in err
    assert main(["run", str(path)]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_validate_ok_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(write_study(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "ok: study 'fake': 5 searched parameters, sampler tpe" in out
    assert f"sqlite:///{tmp_path.resolve()}/fake.db" in out
    assert "timeout_s" not in out
    assert main(["validate", str(write_study(tmp_path, {"study/timeout_s": 90}))]) == 0
    out = capsys.readouterr().out
    assert "timeout_s: 90 s bounds the live search only" in out


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    assert "cannot read" in _problems(tmp_path / "nope.yaml")


def test_relative_paths_are_the_study_files_not_the_working_directorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "studies"
    folder.mkdir()
    changes = {
        "workload": {"kind": "dynamo-trace", "path": "captures/*.jsonl"},
        "deployment/request_trace": "captures/new.jsonl",
        "deployment/run_dir": "/abs/run",
    }
    path = write_study(folder, changes)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_spec(Path("..") / "studies" / path.name)
    assert loaded.spec.workload.path == folder.resolve() / "captures" / "*.jsonl"  # type: ignore[union-attr]
    assert loaded.spec.deployment.request_trace == folder.resolve() / "captures" / "new.jsonl"  # type: ignore[union-attr]
    assert loaded.spec.deployment.run_dir == Path("/abs/run")  # absolute: kept
    assert loaded.sha256 == load_spec(path).sha256  # the hash is of the file as written
