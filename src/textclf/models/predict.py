"""Batched torch inference in length order (little padding), returning logits in input order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textclf.data.text import TextEncoder, length_sorted_batches
from textclf.errors import ArtifactError
from textclf.paths import Paths


def shipped_model_dir(paths: Paths, ship_student: bool) -> Path:
    """The torch model evaluate and export read (the student when ``distill.ship``); its
    absence fails with the stage to run."""
    model_dir = paths.shipped_model_dir(ship_student)
    if not (model_dir / "config.json").is_file():
        stage = "distill" if ship_student else "train"
        raise ArtifactError(f"{model_dir} holds no trained model. Fix: run `dvc repro {stage}`.")
    return model_dir


def load_trained(model_dir: Path) -> tuple[Any, TextEncoder]:
    """Load a model written by the train stage and its encoder, in eval mode on CPU."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    model.eval()
    return model, TextEncoder.from_dir(model_dir)


@torch.inference_mode()
def predict_logits(
    model: Any, encoder: TextEncoder, texts: Sequence[str], batch_size: int = 64
) -> np.ndarray:
    """Logits (n, num_labels) as float32 numpy, rows in the order of ``texts``."""
    ids = encoder.encode(texts)
    device = next(model.parameters()).device
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    for batch in length_sorted_batches([len(x) for x in ids], batch_size):
        arrays = encoder.pad([ids[i] for i in batch])
        logits = model(
            input_ids=torch.from_numpy(arrays["input_ids"]).to(device),
            attention_mask=torch.from_numpy(arrays["attention_mask"]).to(device),
        ).logits
        out[batch] = logits.float().cpu().numpy()
    return out
