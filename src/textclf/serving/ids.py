"""Prediction ids: unique per text, carrying the predicted label and model version, signed.

``p1.<model_version>.<label, base64url>.<nonce>.<mac>``: the mac is HMAC-SHA256 (first 128
bits, hex) of everything before it, keyed by ``TEXTCLF_PREDICTION_ID_KEY``. Feedback for an id
may reach any replica: the id itself says what was predicted by which model, and the mac, which
only holders of the key can make, keeps clients from inventing ids that would skew the live
metrics. Give every replica the same key from one Secret; without one, each process draws its
own, so its ids verify only in the process that issued them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import NamedTuple

ID_KEY_ENV = "TEXTCLF_PREDICTION_ID_KEY"
MIN_KEY_BYTES = 16
PREFIX = "p1"
NONCE_BYTES = 8  # 64 random bits per id
MAC_HEX = 32  # 128 bits


class InvalidIdError(ValueError):
    """The id is malformed, or its mac does not match (forged, altered or another key's)."""


class PredictionRef(NamedTuple):
    """What a valid id says about the prediction it names."""

    model_version: str
    label: str


def _label(label: str) -> str:
    return base64.urlsafe_b64encode(label.encode("utf-8")).rstrip(b"=").decode("ascii")


def _mac(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode("ascii"), hashlib.sha256).hexdigest()[:MAC_HEX]


def mint(key: bytes, model_version: str, label: str) -> str:
    """A new id for one prediction of ``label`` by ``model_version``."""
    payload = f"{PREFIX}.{model_version}.{_label(label)}.{secrets.token_hex(NONCE_BYTES)}"
    return f"{payload}.{_mac(key, payload)}"


def verify(key: bytes, prediction_id: str) -> PredictionRef:
    """The model version and label an id names; :class:`InvalidIdError` unless ``key`` made it."""
    parts = prediction_id.split(".") if isinstance(prediction_id, str) else []
    if len(parts) != 5 or parts[0] != PREFIX:
        raise InvalidIdError("not a prediction id (expected p1.<version>.<label>.<nonce>.<mac>)")
    payload, mac = prediction_id.rpartition(".")[0], parts[4]
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise InvalidIdError("the id's signature does not match: it was not issued by this service")
    encoded = parts[2]
    try:
        label = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):  # only a key holder could sign such an id
        raise InvalidIdError("the id's label is not valid base64url UTF-8") from None
    return PredictionRef(parts[1], label)


def resolve_key(value: str | None) -> tuple[bytes, bool]:
    """The signing key from ``TEXTCLF_PREDICTION_ID_KEY`` (UTF-8), or a random one per process;
    the flag says whether it came from the environment. A short key raises ValueError."""
    if not value:
        return secrets.token_bytes(32), False
    key = value.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"{ID_KEY_ENV} is {len(key)} bytes long, under {MIN_KEY_BYTES}: a short key can be "
            "guessed. Fix: use a random secret from a Secret, e.g. `openssl rand -hex 32`."
        )
    return key, True
