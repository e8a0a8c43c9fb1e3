"""``train``: the Lightning fine-tuning loop."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from textclf.config.base import Section


class TrainParams(Section):
    """``train``: the Lightning fine-tuning loop."""

    seed: int = Field(42, description="random seed for initialisation and batch order")
    epochs: int = Field(1, ge=1, le=100, description="training epochs (1..100)")
    max_steps: int = Field(
        -1, ge=-1, description="stop after this many optimizer steps; -1 for no limit"
    )
    batch_size: int = Field(32, ge=1, le=4096, description="training batch size (per device)")
    eval_batch_size: int = Field(128, ge=1, le=8192, description="validation batch size")
    learning_rate: float = Field(
        8e-5, gt=0.0, le=1.0, description="peak AdamW learning rate, e.g. 5e-5 (positive)"
    )
    weight_decay: float = Field(0.01, ge=0.0, le=1.0, description="AdamW weight decay in [0, 1]")
    warmup_ratio: float = Field(
        0.06, ge=0.0, lt=1.0, description="share of steps with linear warm-up, in [0, 1)"
    )
    val_checks_per_epoch: int = Field(
        2, ge=1, le=100, description="validations per epoch; the best one is kept"
    )
    bucket_batches: int = Field(
        50,
        ge=1,
        description="length bucketing: batches drawn from pools of this many batches sorted by "
        "length (1 disables bucketing)",
    )
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = Field(
        "auto", description="Lightning accelerator: auto, cpu, gpu, cuda or mps"
    )
    devices: int | Literal["auto"] = Field("auto", description="number of devices, or 'auto'")
    num_nodes: int = Field(1, ge=1, description="number of nodes for multi-node DDP")
    strategy: Literal["auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "fsdp"] = (
        Field("auto", description="Lightning strategy: auto, ddp, ddp_spawn or fsdp")
    )
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "bf16-true"] = Field(
        "32-true", description="Lightning precision: 32-true, 16-mixed, bf16-mixed or bf16-true"
    )
    accumulate_grad_batches: int = Field(
        1, ge=1, description="gradient accumulation: optimizer step every N batches"
    )
    gradient_clip_val: float = Field(1.0, ge=0.0, description="gradient norm clip; 0 disables")
    num_threads: int = Field(
        0, ge=0, description="torch CPU threads; 0 keeps torch's default (one per core)"
    )
