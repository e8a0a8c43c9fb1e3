"""The drift CronJob's image, end to end: the serving image records traffic, the drift image
checks it, each run as its pod runs (uid 1034, read-only root filesystem)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.image.conftest import workspace_image
from textclf_dev.bench.image import POD_FLAGS, run_image

pytestmark = pytest.mark.image

TRAFFIC = "/var/lib/textclf/traffic"
SNAPSHOTS = "/var/lib/textclf/snapshots"  # deploy/base/cronjob-drift.yaml's --snapshot-to
REPO = Path(__file__).resolve().parents[2]


def _drift_check(
    env: dict[str, str], image: str, traffic: Path, snapshots: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The CronJob's container: the traffic volume read-only, no network; with ``snapshots``,
    the snapshot volume writable and ``--snapshot-to`` as the CronJob passes it."""
    flags = [f for f in POD_FLAGS if f != "--network=host"]
    snap = [f"--volume={snapshots}:{SNAPSHOTS}"] if snapshots else []
    args = ["--snapshot-to", SNAPSHOTS] if snapshots else []
    return subprocess.run(
        ["podman", "run", "--rm", *flags, "--network=none", f"--volume={traffic}:{TRAFFIC}:ro",
         *snap, image, "--traffic-dir", TRAFFIC, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip


def test_the_drift_image_checks_what_the_serving_image_recorded(
    containers_env: dict[str, str], tmp_path: Path
) -> None:
    serving = workspace_image(containers_env, "textclf", "serving")
    drift = workspace_image(containers_env, "textclf-drift", "drift")
    traffic = tmp_path / "traffic"
    traffic.mkdir()
    os.chown(traffic, 1034, 1034)  # the pods' uid: the serving container writes here
    texts = ["great flight, thanks", "lost my bag again", "boarding at gate 5", "not happy"]
    with run_image(
        containers_env,
        serving,
        extra_env={"TEXTCLF_TRAFFIC_DIR": TRAFFIC},
        volumes=[f"{traffic}:{TRAFFIC}"],
    ) as container:
        ids = []
        for i in range(40):
            batch = [f"{texts[(i + j) % 4]} #{i}" for j in range(4)]
            resp = httpx.post(f"{container.url}/predict", json={"texts": batch}, timeout=60)
            assert resp.status_code == 200, resp.text
            ids += [p["id"] for p in resp.json()]
        # Users label every 4th answer; an unknown label is refused and records nothing.
        items = [{"id": ident, "label": "negative"} for ident in ids[::4]]
        for start in range(0, len(items), 8):
            resp = httpx.post(
                f"{container.url}/feedback", json={"items": items[start : start + 8]}, timeout=60
            )
            assert resp.json() == {"accepted": len(items[start : start + 8]), "duplicates": 0}
        bad = httpx.post(
            f"{container.url}/feedback", json={"items": [{"id": ids[1], "label": "postive"}]}
        )
        assert bad.status_code == 400 and "items[0].label 'postive'" in bad.text
    assert list(traffic.glob("*.jsonl")), "the service recorded traffic"
    assert list(traffic.glob("*.feedback.jsonl")), "and feedback beside it"

    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    os.chown(snapshots, 1034, 1034)
    result = _drift_check(containers_env, drift, traffic, snapshots)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert isinstance(summary["drift_detected"], bool)
    assert summary["rows"]["current"] == 160  # feedback files are not traffic
    assert summary["traffic"]["skipped"]["total"] == 0
    assert summary["model_version_mismatch"] is False  # the profile is the served model's
    assert summary["snapshot"]["requests"] == 160 and summary["snapshot"]["labelled"] == 40

    # The snapshot the CronJob wrote, replayed through the model the image serves: no change.
    (snapshot,) = snapshots.iterdir()
    out = tmp_path / "replay"
    replay = subprocess.run(
        ["textclf", "replay", "--traffic", str(snapshot), "--root", str(REPO), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    report = json.loads((out / "summary.json").read_text())
    assert report["requests"] == 160 and report["changed_share"] == 0.0
    assert report["feedback"]["requests"] == 40
    assert list(report["production_models"]) == [report["model"]["version"]]


def test_an_empty_traffic_directory_exits_2_and_says_why(
    containers_env: dict[str, str], tmp_path: Path
) -> None:
    drift = workspace_image(containers_env, "textclf-drift", "drift")
    (tmp_path / "empty").mkdir()
    result = _drift_check(containers_env, drift, tmp_path / "empty")
    assert result.returncode == 2
    assert "no *.jsonl traffic logs" in result.stderr


def test_the_drift_image_carries_no_serving_or_training_stack(
    containers_env: dict[str, str],
) -> None:
    drift = workspace_image(containers_env, "textclf-drift", "drift")
    probe = (
        "import importlib.util as u; print(' '.join(m for m in "
        "('torch', 'lightning', 'transformers', 'bentoml', 'onnxruntime', 'dvc') "
        "if u.find_spec(m)))"
    )
    result = subprocess.run(
        ["podman", "run", "--rm", "--entrypoint", "python", drift, "-c", probe],
        env={**os.environ, **containers_env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []
