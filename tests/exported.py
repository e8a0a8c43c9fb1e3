"""A tiny model trained, evaluated and exported to ONNX once per test session.

tests/stages, tests/serving and tests/monitoring share it: the first call runs prepare, train,
evaluate and export on the toy corpus (seconds); later calls get the same directory. Tests that
write outputs copy what they need elsewhere or only add files under its reports/ and artifacts/.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_toy_root, tiny_params
from textclf.config.params import Params, parse_params
from textclf.paths import Paths

# Dropout off and enough epochs that the tiny model learns the toy cue words (macro-F1 > 0.9).
MODEL = {"dropout": 0.0}
TRAIN = {"epochs": 20, "num_threads": 1}


def export_params(**export: Any) -> Params:
    """The tiny-model params of :func:`tiny_export` (``export`` overrides keys of its section)."""
    params = tiny_params(model=MODEL, train=TRAIN)
    params["export"].update(export)
    return parse_params(params)


@dataclass(frozen=True)
class TinyExport:
    """A repository root with prepared data, a trained tiny model, predictions and its export."""

    root: Path
    params: Params
    metrics: dict[str, Any]

    @property
    def paths(self) -> Paths:
        return Paths(self.root)

    @property
    def onnx_dir(self) -> Path:
        return self.paths.onnx_dir


_BUILT: dict[str, TinyExport] = {}


def tiny_export(factory: pytest.TempPathFactory, backbone: Path) -> TinyExport:
    """Prepare, train, evaluate and export the toy corpus (once per session)."""
    if "tiny" not in _BUILT:
        from textclf.stages import evaluate, export, prepare, train

        root = make_toy_root(factory.mktemp("exported"), backbone)
        params, paths = export_params(), Paths(root)
        prepare.run(params, paths)
        train.run(params, paths, enable_progress_bar=False)
        scores = evaluate.run(params, paths)
        assert scores["macro_f1"] > 0.9, f"the tiny model did not learn the toy task: {scores}"
        _BUILT["tiny"] = TinyExport(root, params, export.run(params, paths))
    return _BUILT["tiny"]


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_backbone: Path) -> TinyExport:
    """The tiny model, trained, evaluated and exported once per session."""
    return tiny_export(tmp_path_factory, tiny_backbone)
