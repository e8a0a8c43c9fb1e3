"""What every params section shares: the base model, the ONNX variant type, loading, errors."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, cast, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from textclf import yamlio
from textclf.errors import ConfigError

Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
ModelT = TypeVar("ModelT", bound=BaseModel)

# The ONNX graph a stage or the service runs; the one definition (inference, serving, bench use it).
OnnxVariant = Literal["fp32", "int8"]
ONNX_VARIANTS: tuple[OnnxVariant, ...] = get_args(OnnxVariant)


class Section(BaseModel):
    """A params section: frozen, unknown keys rejected, defaults validated."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def _describe(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[str | None, list[str]]:
    """Return the field description at ``loc`` and the keys allowed at its parent."""
    current: type[BaseModel] | None = model
    description = None
    allowed: list[str] = []
    for part in loc:
        if isinstance(part, int):  # an item of a list of models: its keys are the model's
            continue
        if current is None:
            break
        allowed = list(current.model_fields)
        field = current.model_fields.get(part)
        if field is None:
            return None, allowed
        description = field.description
        current = _model_of(field.annotation)
    return description, allowed


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, directly or as the items of a list."""
    if get_origin(annotation) is list:
        annotation = next(iter(get_args(annotation)), None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def format_validation_error(
    err: ValidationError,
    source: str,
    model: type[BaseModel],
    moved: Mapping[str, str] | None = None,
) -> str:
    """Turn a pydantic error into lines naming the key, the value and the fix.

    ``moved``: top-level keys that moved elsewhere, and where (named instead of a typo hint).
    """
    moved = moved or {}
    lines = [f"{source} has {err.error_count()} invalid value(s):"]
    for item in err.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(p) for p in loc) or "<top level>"
        description, allowed = _describe(model, loc)
        if item["type"] == "extra_forbidden" and len(loc) == 1 and loc[0] in moved:
            lines.append(f"  - unknown key '{key}'. Fix: {moved[str(loc[0])]}; remove it here")
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


def validate(
    model: type[ModelT],
    raw: Any,
    source: str,
    what: str = "sections",
    moved: Mapping[str, str] | None = None,
) -> ModelT:
    """Validate a loaded mapping into ``model``; a :class:`ConfigError` names each bad key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of {what}, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, model, moved)) from None


def read_file(path: Path | str, reader: str) -> Any:
    """The YAML mapping of a settings file (``gate.yaml``, ``serve.yaml``); missing: restore it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{path} not found. Fix: restore it from git (`git checkout -- {path.name}`); "
            f"{reader} reads its settings from it."
        )
    return yamlio.read(path)


def load_section(path: Path | str, name: str, model: type[ModelT]) -> ModelT:
    """One section of a params file, validated alone (for a job that reads nothing else)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found. Fix: pass the params file that holds '{name}'.")
    raw = yamlio.read(path)
    if not isinstance(raw, dict) or name not in raw:
        raise ConfigError(
            f"{path} has no '{name}' section. Fix: add it (the repository's params.yaml has one)."
        )
    fields: dict[str, Any] = {name: (model, ...)}
    wrapper = create_model(f"Only_{name}", __base__=Section, **fields)
    return cast(ModelT, getattr(validate(wrapper, {name: raw[name]}, str(path)), name))
