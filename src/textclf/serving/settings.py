"""Where the service finds its model and limits: environment variables over ``serve.yaml``.

``serve.yaml`` is the service's only configuration, and all of it that the image ships. It is
found next to the package: in a bento (``python.is_src_layout``) that is the bento's ``src/``
directory, in a checkout it is the repository root; ``TEXTCLF_SERVE_FILE`` overrides it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from textclf import yamlio
from textclf.config.base import ONNX_VARIANTS, format_validation_error
from textclf.config.serve import SERVE_FILE, ServeParams
from textclf.errors import ConfigError
from textclf.paths import Paths
from textclf.serving.ids import ID_KEY_ENV, resolve_key
from textclf.serving.traffic import HASH_KEY_ENV, MIN_HASH_KEY_BYTES, TEXT_MODES

ENV_MODEL_DIR = "TEXTCLF_MODEL_DIR"
ENV_VARIANT = "TEXTCLF_ONNX_VARIANT"
ENV_TRAFFIC_DIR = "TEXTCLF_TRAFFIC_DIR"
ENV_TRAFFIC_TEXT = "TEXTCLF_TRAFFIC_TEXT"
ENV_TRAFFIC_HASH_KEY = HASH_KEY_ENV  # "TEXTCLF_TRAFFIC_HASH_KEY"
ENV_SERVE_FILE = "TEXTCLF_SERVE_FILE"


@dataclass(frozen=True)
class ServeSettings:
    """Everything the service needs to start, resolved once."""

    params: ServeParams
    serve_file: Path | None
    model_dir: Path
    variant: str
    traffic_dir: Path | None
    traffic_text: str  # keep | hash | drop: TEXTCLF_TRAFFIC_TEXT over traffic_log.text
    traffic_hash_key: bytes | None = field(repr=False)  # TEXTCLF_TRAFFIC_HASH_KEY, UTF-8
    # Signs prediction ids (textclf.serving.ids): TEXTCLF_PREDICTION_ID_KEY, else per process.
    prediction_id_key: bytes = field(repr=False)
    prediction_id_key_shared: bool  # True when it came from the environment


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota.

    A container's CPU limit is a quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), not an
    affinity, so ``os.cpu_count()`` would give the node's cores; a fractional quota rounds up.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota, period = None, None
    try:
        quota_text, _, period_text = (cgroup / "cpu.max").read_text().partition(" ")
        if quota_text != "max":
            quota, period = int(quota_text), int(period_text or 100_000)
    except (OSError, ValueError):
        try:
            quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
            period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            quota = None
    limit = -(-quota // period) if quota and period and quota > 0 else None
    return max(1, min(cores or 1, limit or cores or 1))


def lone_call_threads(params: ServeParams, cores: int | None = None) -> int:
    """Threads of the service's lone-call session (``serve.lone_call_threads``, 0 = auto)."""
    if params.lone_call_threads:
        return params.lone_call_threads
    return max(1, (cores if cores is not None else usable_cores()) // params.workers)


def find_root(start: Path | None = None) -> Path | None:
    """The nearest directory above this package (then the cwd) that holds ``serve.yaml``."""
    here = (start or Path(__file__)).resolve()
    for candidate in [*here.parents, Path.cwd()]:
        if (candidate / SERVE_FILE).is_file():
            return candidate
    return None


def read_serve_params(path: Path) -> ServeParams:
    """Validate a ``serve.yaml`` (its keys at the top level)."""
    try:
        raw = yamlio.read(path)
    except ConfigError as err:
        raise ConfigError(f"{err}. Fix: point {ENV_SERVE_FILE} at a valid serve.yaml.") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping of serve keys, got {raw!r}.")
    try:
        return ServeParams.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, str(path), ServeParams)) from None


def load_settings(environ: Mapping[str, str] | None = None) -> ServeSettings:
    """Resolve params, model directory, variant and traffic log from env and params."""
    env = os.environ if environ is None else environ
    serve_file: Path | None
    root: Path | None
    if env.get(ENV_SERVE_FILE):
        explicit = Path(env[ENV_SERVE_FILE])
        if not explicit.is_file():
            raise ConfigError(
                f"{ENV_SERVE_FILE}={explicit} does not exist. Fix: point it at a "
                "serve.yaml or unset it."
            )
        serve_file, root = explicit, explicit.parent
    else:
        root = find_root()
        serve_file = root / SERVE_FILE if root else None
    params = read_serve_params(serve_file) if serve_file else ServeParams()
    variant = env.get(ENV_VARIANT) or params.variant
    if variant not in ONNX_VARIANTS:
        raise ConfigError(
            f"{ENV_VARIANT}={variant!r} is invalid. Fix: set it to one of "
            f"{', '.join(ONNX_VARIANTS)}, or unset it to use serve.variant."
        )
    if env.get(ENV_MODEL_DIR):
        model_dir = Path(env[ENV_MODEL_DIR])
    elif root is not None:
        model_dir = Paths(root).onnx_dir
    else:
        raise ConfigError(
            f"no {SERVE_FILE} next to the textclf package or in {Path.cwd()}, "
            f"so the model directory is unknown. Fix: set {ENV_MODEL_DIR} to an "
            "artifacts/onnx directory."
        )
    traffic = env.get(ENV_TRAFFIC_DIR)
    text_mode, hash_key = _traffic_text(env, params, serve_file, enabled=bool(traffic))
    try:
        id_key, shared = resolve_key(env.get(ID_KEY_ENV))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return ServeSettings(
        params=params,
        serve_file=serve_file,
        model_dir=model_dir,
        variant=variant,
        traffic_dir=Path(traffic) if traffic else None,
        traffic_text=text_mode,
        traffic_hash_key=hash_key,
        prediction_id_key=id_key,
        prediction_id_key_shared=shared,
    )


def _traffic_text(
    env: Mapping[str, str], params: ServeParams, serve_file: Path | None, *, enabled: bool
) -> tuple[str, bytes | None]:
    """The traffic log's text mode and, for ``hash``, its HMAC key (checked when recording)."""
    override = env.get(ENV_TRAFFIC_TEXT)
    mode = override or params.traffic_log.text
    if mode not in TEXT_MODES:
        raise ConfigError(
            f"{ENV_TRAFFIC_TEXT}={mode!r} is invalid. Fix: set it to one of "
            f"{', '.join(TEXT_MODES)}, or unset it to use serve.traffic_log.text."
        )
    key = env.get(ENV_TRAFFIC_HASH_KEY) or None
    if mode != "hash" or not enabled:
        return mode, None
    where = f"{ENV_TRAFFIC_TEXT}=hash" if override else f"{serve_file}: traffic_log.text = hash"
    if key is None:
        raise ConfigError(
            f"{where}, but {ENV_TRAFFIC_HASH_KEY} is not set: text_hmac needs a secret key "
            "(a plain, unkeyed hash of a short text is reversed by hashing a dictionary of "
            f"likely texts). Fix: set {ENV_TRAFFIC_HASH_KEY} from a Kubernetes Secret "
            "(e.g. `openssl rand -hex 32`), or use the text mode 'drop'."
        )
    if len(key.encode()) < MIN_HASH_KEY_BYTES:
        raise ConfigError(
            f"{ENV_TRAFFIC_HASH_KEY} is {len(key.encode())} bytes long, under "
            f"{MIN_HASH_KEY_BYTES} ({where}): a short key can be guessed. Fix: use a random "
            "secret, e.g. `openssl rand -hex 32`."
        )
    return mode, key.encode()
