"""Service settings: environment over serve.yaml, and errors that name the key and the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from textclf.config.serve import SERVE_FILE, ServeParams
from textclf.errors import ConfigError
from textclf.serving.settings import (
    find_root,
    load_settings,
    lone_call_threads,
    read_serve_params,
    usable_cores,
)

REPO = Path(__file__).resolve().parents[2]


def _params(tmp_path: Path, serve: object) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(serve), "utf-8")
    return path


def test_the_repository_serve_file_is_valid() -> None:
    params = read_serve_params(REPO / SERVE_FILE)
    assert params.variant in ("int8", "fp32")
    assert params.batching.max_texts >= params.max_batch_size  # a full request fits one call


def test_service_threads_fit_the_pods_cpu_limit() -> None:
    """``workers x parallel_calls x threads`` stays within the CPU limit the rollout gives the
    pod: more threads than cores make ONNX Runtime's parallel ops wait for descheduled threads
    (and ``threads: 0`` would mean one per core of the node, not of the pod)."""
    params = read_serve_params(REPO / SERVE_FILE)
    rollout = yaml.safe_load((REPO / "deploy/base/rollout.yaml").read_text("utf-8"))
    (container,) = [
        c for c in rollout["spec"]["template"]["spec"]["containers"] if c["name"] == "textclf"
    ]
    cpu = str(container["resources"]["limits"]["cpu"])
    limit = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    assert params.threads >= 1
    used = params.workers * params.parallel_calls * params.threads
    assert used <= limit, (params.workers, params.parallel_calls, params.threads, cpu)


def test_environment_overrides_params(tmp_path: Path) -> None:
    path = _params(tmp_path, {"variant": "int8", "max_batch_size": 3})
    settings = load_settings(
        {
            "TEXTCLF_SERVE_FILE": str(path),
            "TEXTCLF_ONNX_VARIANT": "fp32",
            "TEXTCLF_MODEL_DIR": "/models/x",
            "TEXTCLF_TRAFFIC_DIR": "/t",
        }
    )
    assert (settings.variant, settings.params.max_batch_size) == ("fp32", 3)
    assert settings.model_dir == Path("/models/x")
    assert settings.traffic_dir == Path("/t")


def test_defaults_come_from_the_params_file_next_to_the_package(tmp_path: Path) -> None:
    path = _params(tmp_path, {"variant": "int8"})
    settings = load_settings({"TEXTCLF_SERVE_FILE": str(path)})
    assert settings.variant == "int8"
    assert settings.model_dir == tmp_path / "artifacts" / "onnx"
    assert settings.traffic_dir is None  # recording is off unless TEXTCLF_TRAFFIC_DIR is set
    assert find_root() == REPO


@pytest.mark.parametrize(
    ("serve", "env", "fragments"),
    [
        (
            {"max_batch_size": 0},
            {},
            ["serve.yaml has 1 invalid value(s)", "max_batch_size = 0", "Fix:"],
        ),
        ({"batching": {"max_queue_ms": 1}}, {}, ["batching.max_queue_ms = 1", "Fix:"]),
        ({"workers": 0}, {}, ["workers = 0", "Fix:"]),
        ({"parallel_calls": 0}, {}, ["parallel_calls = 0", "Fix:"]),
        ({"varient": "int8"}, {}, ["unknown key", "did you mean 'variant'"]),
        ({"variant": "int4"}, {}, ["variant", "int8"]),
        ({"trace_requests": "sometimes"}, {}, ["trace_requests", "Fix:"]),
        ({"access_log": "some"}, {}, ["access_log = 'some'", "'errors'", "Fix:"]),
        (
            {"max_body_bytes": 100_000},  # 64 texts x 2000 characters need 513_024
            {},
            ["max_body_bytes = 100000 cannot hold max_batch_size = 64", "at least 513024"],
        ),
        ({"max_concurrency": 0}, {}, ["max_concurrency = 0", "Fix:"]),
        (
            {"model_timeout_ms": 29_500},
            {},
            ["model_timeout_ms + batching.max_queue_ms = 30500 ms", "30 s request timeout"],
        ),
        ({}, {"TEXTCLF_ONNX_VARIANT": "int4"}, ["TEXTCLF_ONNX_VARIANT='int4'", "Fix:"]),
        ("fp32", {}, ["must be a mapping of serve keys"]),
    ],
)
def test_bad_settings_name_the_key_and_the_fix(
    tmp_path: Path, serve: object, env: dict[str, str], fragments: list[str]
) -> None:
    path = _params(tmp_path, serve)
    with pytest.raises(ConfigError) as err:
        load_settings({"TEXTCLF_SERVE_FILE": str(path), **env})
    for fragment in fragments:
        assert fragment in str(err.value)


@pytest.mark.parametrize(
    ("written", "means"),
    [("errors", "errors"), ("all", "all"), ("true", "all"), ("false", "off"), ("off", "off")],
)
def test_access_log_takes_its_words_and_the_old_booleans(
    tmp_path: Path, written: str, means: str
) -> None:
    """``access_log: true``/``false`` (the setting's earlier form; YAML reads ``off`` as false
    too) keep meaning every line and none."""
    path = tmp_path / SERVE_FILE
    path.write_text(f"access_log: {written}\n", encoding="utf-8")
    assert load_settings({"TEXTCLF_SERVE_FILE": str(path)}).params.access_log == means


def test_a_missing_serve_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TEXTCLF_SERVE_FILE=.*does not exist"):
        load_settings({"TEXTCLF_SERVE_FILE": str(tmp_path / "nope.yaml")})


@pytest.mark.parametrize("module", ["textclf.serving.service", "textclf.inference"])
def test_serving_imports_no_training_stack(module: str, serve_env: dict[str, str]) -> None:
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'transformers', 'sklearn') "
        "if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**serve_env, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "100000 100000\n"}, 1),  # a one-core limit on a bigger node
        ({"cpu.max": "150000 100000\n"}, 2),  # a fraction rounds up
        ({"cpu.max": "max 100000\n"}, None),  # no limit: the affinity
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),  # no cgroup files at all
    ],
)
def test_usable_cores_follow_the_cgroup_quota_not_the_node(
    tmp_path: Path, files: dict[str, str], expected: int | None
) -> None:
    affinity = len(os.sched_getaffinity(0))
    got = usable_cores(_cgroup(tmp_path, files))
    assert got == (affinity if expected is None else min(expected, affinity))


def test_lone_call_threads_default_to_the_cores_of_a_worker() -> None:
    assert lone_call_threads(ServeParams(), cores=4) == 4
    assert lone_call_threads(ServeParams(workers=2), cores=4) == 2
    assert lone_call_threads(ServeParams(workers=8), cores=4) == 1
    assert lone_call_threads(ServeParams(lone_call_threads=3), cores=4) == 3
