"""`release exists`: the Docker Registry HTTP API v2 against a local registry."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from textclf.errors import ReleaseError
from textclf.release import REGISTRY_PASSWORD_ENV, REGISTRY_USER_ENV, ImageRef, image_exists

from .conftest import Registry, release

SECRET, WRONG = "s3cret", "wrong"  # pragma: allowlist secret


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("ghcr.io/org/repo:m-0123456789ab", ("ghcr.io", "org/repo", "m-0123456789ab")),
        ("localhost:5000/a/b:v1", ("localhost:5000", "a/b", "v1")),
        ("127.0.0.1:5000/a:v1", ("127.0.0.1:5000", "a", "v1")),
        ("ubuntu:24.04", ("registry-1.docker.io", "library/ubuntu", "24.04")),
        ("org/app:1", ("registry-1.docker.io", "org/app", "1")),
    ],
)
def test_parse_image_reference(ref: str, expected: tuple[str, str, str]) -> None:
    image = ImageRef.parse(ref)
    assert (image.registry, image.repository, image.tag) == expected


@pytest.mark.parametrize(
    "ref", ["ghcr.io/org/repo", "ghcr.io/org/repo@sha256:" + "0" * 64, "localhost:5000/repo"]
)
def test_references_without_a_tag_are_refused(ref: str) -> None:
    with pytest.raises(ReleaseError):
        ImageRef.parse(ref)


def test_local_registries_use_plain_http() -> None:
    assert ImageRef.parse("127.0.0.1:5000/a:t").base_url == "http://127.0.0.1:5000"
    assert ImageRef.parse("localhost:5000/a:t").base_url == "http://localhost:5000"
    assert ImageRef.parse("ghcr.io/a:t").base_url == "https://ghcr.io"


def test_exists_and_missing(registry: Registry) -> None:
    registry.push(f"{registry.host}/org/app:m-aaaaaaaaaaaa")
    assert image_exists(f"{registry.host}/org/app:m-aaaaaaaaaaaa") is True
    assert image_exists(f"{registry.host}/org/app:m-bbbbbbbbbbbb") is False
    assert registry.requests == [
        "HEAD /v2/org/app/manifests/m-aaaaaaaaaaaa",
        "HEAD /v2/org/app/manifests/m-bbbbbbbbbbbb",
    ]


def test_token_authentication(registry: Registry) -> None:
    """A 401 challenge: a bearer token from the realm with basic credentials, then the HEAD."""
    registry.credentials = ("bot", "s3cret")
    registry.push(f"{registry.host}/org/app:v1")
    assert image_exists(f"{registry.host}/org/app:v1", username="bot", password=SECRET)
    assert not image_exists(f"{registry.host}/org/app:v2", username="bot", password=SECRET)
    assert registry.requests[1].startswith("GET /token?service=")
    assert "scope=repository%3Aorg%2Fapp%3Apull" in registry.requests[1]
    with pytest.raises(ReleaseError, match=f"refused a pull token.*{REGISTRY_USER_ENV}"):
        image_exists(f"{registry.host}/org/app:v1", username="bot", password=WRONG)


def test_other_answers_are_errors_not_guesses(registry: Registry) -> None:
    registry.force_status = 500
    with pytest.raises(ReleaseError, match="HTTP 500"):
        image_exists(f"{registry.host}/org/app:v1")


def test_unreachable_registry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ReleaseError, match="cannot reach"):
        image_exists(f"127.0.0.1:{port}/org/app:v1")


def test_exists_cli_exit_codes(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.credentials = ("bot", "s3cret")
    monkeypatch.setenv(REGISTRY_USER_ENV, "bot")
    monkeypatch.setenv(REGISTRY_PASSWORD_ENV, "s3cret")
    registry.push(f"{registry.host}/org/app:v1")
    found = release(tmp_path, "exists", "--image", f"{registry.host}/org/app:v1")
    assert found.exit_code == 0 and "exists, nothing to build" in found.stdout
    missing = release(tmp_path, "exists", "--image", f"{registry.host}/org/app:v2")
    assert missing.exit_code == 1 and "missing, build it" in missing.stdout
    monkeypatch.setenv(REGISTRY_PASSWORD_ENV, "wrong")
    error = release(tmp_path, "exists", "--image", f"{registry.host}/org/app:v1")
    assert error.exit_code == 2 and "refused a pull token" in error.stderr
