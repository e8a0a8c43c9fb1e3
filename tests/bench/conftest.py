"""Fixtures of the benchmark tests: the shared tiny export, seen from a root of their own."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.exported import TinyExport, exported

__all__ = ["exported"]


@pytest.fixture
def bench_root(tmp_path: Path, exported: TinyExport) -> Path:
    """A root whose artifacts/ and tiny/ are the shared export's, with params.yaml and no reports.

    The benchmarks write reports/bench.* here, so the shared export's directory stays as it was.
    """
    (tmp_path / "artifacts").symlink_to(exported.root / "artifacts", target_is_directory=True)
    (tmp_path / "tiny").symlink_to(exported.root / "tiny", target_is_directory=True)
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(exported.params.model_dump()), encoding="utf-8"
    )
    return tmp_path
