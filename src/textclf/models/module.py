"""LightningModule around a transformers sequence classifier."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score


class FineTuneModule(L.LightningModule):
    """Fine-tunes ``AutoModelForSequenceClassification``; validation reports macro-F1."""

    def __init__(
        self,
        model: Any,
        num_labels: int,
        learning_rate: float,
        weight_decay: float,
        warmup_ratio: float,
    ) -> None:
        super().__init__()
        self.model = model
        self.model.train()  # from_pretrained returns eval mode; Lightning keeps modes as found
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.val_f1 = MulticlassF1Score(num_classes=num_labels, average="macro")
        self.val_acc = MulticlassAccuracy(num_classes=num_labels, average="micro")
        self.samples_seen = 0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits for a padded batch."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Cross-entropy on one batch."""
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = torch.nn.functional.cross_entropy(logits, batch["labels"])
        self.samples_seen += int(batch["labels"].shape[0])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["labels"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Accumulate validation loss, accuracy and macro-F1."""
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = torch.nn.functional.cross_entropy(logits, batch["labels"])
        preds = logits.argmax(dim=-1)
        self.val_f1.update(preds, batch["labels"])
        self.val_acc.update(preds, batch["labels"])
        n = batch["labels"].shape[0]
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=n)

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's macro-F1 (the checkpoint monitor) and accuracy."""
        self.log("val/macro_f1", self.val_f1.compute(), prog_bar=True, sync_dist=True)
        self.log("val/accuracy", self.val_acc.compute(), sync_dist=True)
        self.val_f1.reset()
        self.val_acc.reset()

    def configure_optimizers(self) -> Any:
        """AdamW (no decay on biases and LayerNorm) with linear warm-up and decay."""
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for name, param in self.model.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": self.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=self.learning_rate,
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(total * self.warmup_ratio)

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.0, (total - step) / max(1, total - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
