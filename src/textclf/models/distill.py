"""A student cut from the fine-tuned teacher, and the Lightning module that distils into it."""

from __future__ import annotations

import copy
from typing import Any

import torch

from textclf.errors import ConfigError
from textclf.models.module import FineTuneModule


def kept_layers(teacher_layers: int, share: float, choice: str) -> list[int]:
    """Indices of the teacher's encoder layers the student starts from.

    ``spread`` spaces them evenly with the first and the last kept (6 layers, share 0.5:
    0, 2, 5); ``first`` keeps the bottom ones (0, 1, 2)."""
    k = max(1, round(teacher_layers * share))
    if k >= teacher_layers:
        raise ConfigError(
            f"distill.layer_share = {share} keeps {k} of the teacher's {teacher_layers} layers: "
            "the student would be no smaller. Fix: lower distill.layer_share."
        )
    if choice == "first":
        return list(range(k))
    if k == 1:
        return [teacher_layers - 1]
    return sorted({round(i * (teacher_layers - 1) / (k - 1)) for i in range(k)})


def encoder_layers(model: Any) -> torch.nn.ModuleList:
    """The encoder's layer list of a BERT-family classifier (``base_model.encoder.layer``)."""
    layers = getattr(getattr(getattr(model, "base_model", None), "encoder", None), "layer", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ConfigError(
            f"distillation cuts layers from base_model.encoder.layer, which "
            f"{type(model).__name__} does not have. Fix: use a BERT-family backbone (BERT, "
            "MiniLM, RoBERTa, ...) or set distill.enabled: false."
        )
    return layers


def make_student(teacher: Any, share: float, choice: str) -> tuple[Any, list[int]]:
    """A copy of ``teacher`` keeping only some encoder layers (embeddings and head kept)."""
    layers = encoder_layers(teacher)
    keep = kept_layers(len(layers), share, choice)
    student = copy.deepcopy(teacher)
    encoder_layers(student)  # same structure
    student.base_model.encoder.layer = torch.nn.ModuleList([copy.deepcopy(layers[i]) for i in keep])
    student.config.num_hidden_layers = len(keep)
    return student, keep


def parameter_count(model: Any) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


class DistillModule(FineTuneModule):
    """Trains the student on ``alpha`` x KL(teacher || student) at ``temperature`` (scaled by
    T^2, Hinton et al.) plus ``1 - alpha`` x cross-entropy on the gold labels. The teacher is
    frozen and stays in eval mode (no dropout)."""

    def __init__(
        self,
        student: Any,
        teacher: Any,
        num_labels: int,
        learning_rate: float,
        weight_decay: float,
        warmup_ratio: float,
        temperature: float,
        alpha: float,
    ) -> None:
        super().__init__(student, num_labels, learning_rate, weight_decay, warmup_ratio)
        self.teacher = teacher
        for param in self.teacher.parameters():
            param.requires_grad_(False)
        self.temperature = temperature
        self.alpha = alpha

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The soft-label and gold-label losses on one batch."""
        import torch.nn.functional as F

        logits = self(batch["input_ids"], batch["attention_mask"])
        self.teacher.eval()
        with torch.no_grad():
            target = self.teacher(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
        t = self.temperature
        soft = F.kl_div(
            F.log_softmax(logits / t, dim=-1),
            F.log_softmax(target / t, dim=-1),
            log_target=True,
            reduction="batchmean",
        ) * (t * t)
        hard = F.cross_entropy(logits, batch["labels"])
        loss = self.alpha * soft + (1.0 - self.alpha) * hard
        n = int(batch["labels"].shape[0])
        self.samples_seen += n
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/soft_loss", soft, batch_size=n)
        self.log("train/hard_loss", hard, batch_size=n)
        return loss
