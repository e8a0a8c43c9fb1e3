"""Prediction ids: unique, signed, naming the label and model version; forgeries are refused."""

from __future__ import annotations

import pytest

from textclf.serving import ids
from textclf.serving.settings import load_settings

KEY = b"a-test-key-of-more-than-16-bytes"


@pytest.mark.parametrize("label", ["positive", "négatif", "a.b.c", "with space", "x" * 200])
def test_an_id_names_its_model_version_and_label(label: str) -> None:
    pid = ids.mint(KEY, "0f6e21f2ad8d", label)
    assert pid.startswith("p1.0f6e21f2ad8d.") and pid.count(".") == 4
    assert ids.verify(KEY, pid) == ids.PredictionRef("0f6e21f2ad8d", label)


def test_ids_are_unique() -> None:
    minted = {ids.mint(KEY, "v", "positive") for _ in range(10_000)}
    assert len(minted) == 10_000


def _swap(pid: str, index: int, value: str) -> str:
    parts = pid.split(".")
    parts[index] = value
    return ".".join(parts)


def test_a_forged_or_altered_id_is_refused() -> None:
    pid = ids.mint(KEY, "0f6e21f2ad8d", "positive")
    assert ids.verify(KEY, pid).label == "positive"  # the original passes: the checks below bite
    forged_label = _swap(pid, 2, ids.mint(KEY, "x", "negative").split(".")[2])
    forged_version = _swap(pid, 1, "aaaaaaaaaaaa")
    forged_nonce = _swap(pid, 3, "0" * 16)
    for forged in (forged_label, forged_version, forged_nonce):
        with pytest.raises(ids.InvalidIdError, match="signature does not match"):
            ids.verify(KEY, forged)
    with pytest.raises(ids.InvalidIdError, match="signature does not match"):
        ids.verify(b"another-key-of-more-than-16-bytes", pid)


@pytest.mark.parametrize(
    "bad", ["", "p1", "p2.v.bA.n.m", "p1.v.bA.n", "p1.v.bA.n.m.extra", "not an id at all"]
)
def test_a_malformed_id_is_refused(bad: str) -> None:
    with pytest.raises(ids.InvalidIdError, match="not a prediction id|signature"):
        ids.verify(KEY, bad)


def test_the_key_comes_from_the_environment_or_is_drawn_per_process() -> None:
    key, shared = ids.resolve_key("k" * 32)
    assert (key, shared) == (b"k" * 32, True)
    first, first_shared = ids.resolve_key(None)
    second, _ = ids.resolve_key("")
    assert not first_shared and len(first) == 32 and first != second
    with pytest.raises(ValueError, match="under 16: a short key can be guessed"):
        ids.resolve_key("short")


def test_a_short_key_stops_the_service_with_the_fix(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from textclf.errors import ConfigError

    serve = tmp_path / "serve.yaml"
    serve.write_text("{}\n", encoding="utf-8")
    env = {"TEXTCLF_SERVE_FILE": str(serve), "TEXTCLF_MODEL_DIR": str(tmp_path)}
    assert load_settings(env).prediction_id_key_shared is False
    with pytest.raises(ConfigError, match="TEXTCLF_PREDICTION_ID_KEY is 5 bytes long"):
        load_settings({**env, ids.ID_KEY_ENV: "short"})
    settings = load_settings({**env, ids.ID_KEY_ENV: "s" * 20})
    assert settings.prediction_id_key == b"s" * 20 and settings.prediction_id_key_shared
