"""The whole ``params.yaml``: every pipeline section, validated by the CLI before any stage runs.

No stage imports this module (each reads its own sections' modules), so adding a section here
reruns no stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textclf import yamlio
from textclf.config.base import Section, validate
from textclf.config.behaviour import BehaviourParams
from textclf.config.data import DataParams, PrepareParams
from textclf.config.distill import DistillParams
from textclf.config.drift import DriftParams
from textclf.config.evaluate import EvaluateParams
from textclf.config.explain import ExplainParams
from textclf.config.export import ExportParams
from textclf.config.model import ModelParams
from textclf.config.monitor import MonitorParams
from textclf.config.replay import ReplayParams
from textclf.config.slices import SlicesParams
from textclf.config.train import TrainParams
from textclf.errors import ConfigError


class Params(Section):
    """The whole ``params.yaml``. Sections other stages add are validated the same way.

    ``params.yaml`` names every knob; a default here equals its value there, or there is none
    (``tests/unit/test_config.py`` checks both), so a key left out changes nothing.
    """

    data: DataParams
    prepare: PrepareParams = PrepareParams()
    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    distill: DistillParams = DistillParams()
    evaluate: EvaluateParams = EvaluateParams()
    export: ExportParams = ExportParams()
    explain: ExplainParams = ExplainParams()
    slices: SlicesParams = SlicesParams()
    drift: DriftParams = DriftParams()
    behaviour: BehaviourParams = BehaviourParams()
    replay: ReplayParams = ReplayParams()
    monitor: MonitorParams = MonitorParams()


#: Top-level keys that moved out of params.yaml, and where they live now.
MOVED_KEYS = {
    "gate": "the promotion gate moved to gate.yaml (same keys, at the top level of that file)",
    "serve": "the service's settings moved to serve.yaml (same keys, at the top level of that "
    "file)",
}


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-loaded mapping into :class:`Params`."""
    return validate(Params, raw, source, moved=MOVED_KEYS)


def load_params(path: Path | str = "params.yaml") -> Params:
    """Load and validate ``params.yaml`` (YAML 1.2, as DVC reads it); errors name the bad key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found. Fix: run from the repository root or pass --params.")
    return parse_params(yamlio.read(path), source=str(path))
