"""``export``: ONNX export, int8 quantisation, the parity gates and CPU latency."""

from __future__ import annotations

from pydantic import Field, field_validator

from textclf.config.base import Section


class ExportParams(Section):
    """``export``: ONNX export, int8 quantisation, the parity gates and CPU latency."""

    opset: int = Field(
        18,
        ge=18,
        le=23,
        description="ONNX opset of the exported graph (18..23; torch's "
        "exporter implements 18 and up)",
    )
    batch_size: int = Field(
        64, ge=1, le=4096, description="texts per inference batch for the parity checks"
    )
    max_abs_logit_diff: float = Field(
        1e-4,
        gt=0.0,
        description="fp32 gate: the largest |logit| difference between torch and "
        "the fp32 ONNX graph allowed on the test split, e.g. 1e-4 (positive)",
    )
    int8_min_agreement: float = Field(
        0.985,
        ge=0.0,
        le=1.0,
        description="int8 gate: minimum share of test texts where the int8 "
        "graph predicts the same label as torch, in [0, 1]",
    )
    int8_max_f1_drop: float = Field(
        0.005,
        ge=0.0,
        le=1.0,
        description="int8 gate: largest allowed drop of test macro-F1 "
        "from torch to the int8 graph, in [0, 1]",
    )
    int8_per_channel: bool = Field(
        True,
        description="int8: one weight scale per output channel (closer to fp32 at the same "
        "speed) instead of one per matrix",
    )
    int8_reduce_range: bool = Field(
        True,
        description="int8: 7-bit weights, so the u8 x s8 products cannot saturate on CPUs "
        "without VNNI (AVX2, AVX-512 before Cascade Lake): the graph then gives the same "
        "labels on every x86 CPU, not only on the one that ran export",
    )
    int8_smooth_alpha: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="int8: shrink the outlier channels of the feed-forward inputs by "
        "(max / median max) ** alpha before quantising (SmoothQuant), in [0, 1]; 0 = off",
    )
    int8_calibration_size: int = Field(
        512,
        ge=1,
        le=100_000,
        description="train texts whose activations set the int8 smoothing scales (>= 1)",
    )
    int8_fp32_ffn_down: bool = Field(
        False,
        description="int8: keep the feed-forward down-projections (the MatMuls whose weight "
        "narrows the hidden size) in fp32: a little closer to fp32, about 15% slower at batch 1",
    )
    latency_batch_sizes: list[int] = Field(
        [1, 32], min_length=1, description="batch sizes timed for latency, e.g. [1, 32]"
    )
    latency_sample_size: int = Field(
        256, ge=1, le=100_000, description="test texts timed per engine and batch size"
    )
    latency_runs: int = Field(
        3, ge=1, le=100, description="passes over the latency sample (more = steadier p95)"
    )
    latency_warmup: int = Field(
        3, ge=0, le=1000, description="untimed batches before each timing (>= 0)"
    )
    threads: int = Field(
        0,
        ge=0,
        description="CPU threads for torch and ONNX Runtime while timing; 0 keeps "
        "their defaults (one per core)",
    )
    seed: int = Field(42, description="random seed of the latency sample (an integer)")

    @field_validator("latency_batch_sizes")
    @classmethod
    def _batch_sizes_positive(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value) or len(set(value)) != len(value):
            raise ValueError("batch sizes must be distinct positive integers")
        return value
