"""Fixtures of the monitoring tests: the shared tiny export (tests/exported.py) and its stages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.exported import TinyExport, exported

__all__ = ["exported"]


@pytest.fixture(scope="session")
def onnx_model(exported: TinyExport) -> Any:
    """The exported fp32 graph, loaded once."""
    from textclf.inference import OnnxClassifier

    return OnnxClassifier(exported.onnx_dir, "fp32", threads=1)


@pytest.fixture(scope="session")
def stage_outputs(exported: TinyExport) -> dict[str, Any]:
    """Run explain, slices and drift once on the exported root; their return values by stage."""
    from textclf.stages import drift, explain, slices

    return {
        stage.__name__.rsplit(".", 1)[-1]: stage.run(exported.params, exported.paths)
        for stage in (explain, slices, drift)
    }
