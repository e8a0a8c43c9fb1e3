"""The APIs answered by DirectRoutes: the same answers as BentoML's endpoint, without it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest

from tests.serving.conftest import SERVE

MAX_CHARS = SERVE["max_text_chars"]
CASES = [
    ("/predict", b'{"texts": ["I love this phone", "the flight was delayed again"]}'),
    ("/predict", b'{"texts": ["only one"]}'),
    ("/predict", b"{not json"),
    ("/predict", b""),
    ("/predict", b"null"),
    ("/predict", b"[]"),
    ("/predict", b'{"texts": []}'),
    ("/predict", b'{"texts": ["a"], "extra": 1}'),
    ("/predict", b'{"texts": [1, "b"]}'),
    ("/predict", b'{"texts": ["   "]}'),
    ("/predict", json.dumps({"texts": ["z" * (MAX_CHARS + 1)]}).encode()),
    ("/predict", b'{"texts": ["caf\xe9"]}'),
    ("/feedback", b'{"items": []}'),
    ("/feedback", b'{"items": [{"id": "not-an-id", "label": "positive"}]}'),
    ("/feedback", b"{bad"),
]


@contextmanager
def _bentoml_answers(service_module: ModuleType) -> Iterator[None]:
    """DirectRoutes steps aside (as before the instance is loaded): BentoML's endpoint answers."""
    live = list(service_module._LIVE)
    service_module._LIVE.clear()
    try:
        yield
    finally:
        service_module._LIVE[:] = live


def _answer(client: Any, path: str, body: bytes) -> dict[str, Any]:
    resp = client.post(path, content=body, headers={"content-type": "application/json"})
    payload = resp.json()
    if path == "/predict" and resp.status_code == 200:
        for prediction in payload:
            assert prediction.pop("id").startswith("p1.")  # a fresh nonce per answer
    return {
        "status": resp.status_code,
        "content-type": resp.headers["content-type"],
        "server": resp.headers.get("server"),
        "retry-after": resp.headers.get("retry-after"),
        "body": payload,
    }


@pytest.mark.parametrize(("path", "body"), CASES)
def test_direct_routes_answer_as_bentoml_would(
    client: Any, service_module: ModuleType, path: str, body: bytes
) -> None:
    direct = _answer(client, path, body)
    with _bentoml_answers(service_module):
        bentoml = _answer(client, path, body)
    assert direct == bentoml


def test_the_apis_never_reach_bentomls_endpoint(
    client: Any, service_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _bentoml_impl.server.app import ServiceAppFactory

    reached: list[str] = []

    async def endpoint(self: Any, name: str, request: Any) -> Any:
        reached.append(name)
        raise AssertionError("BentoML's endpoint was called")

    monkeypatch.setattr(ServiceAppFactory, "api_endpoint", endpoint)
    for path, body in CASES:
        client.post(path, content=body, headers={"content-type": "application/json"})
    assert reached == []
    # Negative control: with DirectRoutes aside, the same request reaches the patched endpoint.
    with _bentoml_answers(service_module):
        resp = client.post("/predict", json={"texts": ["x"]})
    assert reached == ["predict"] and resp.status_code == 500
    # Other methods on the routes are still BentoML's.
    assert client.get("/predict").status_code == 405


def test_a_model_error_is_a_500_that_names_no_input(
    client: Any, service_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = service_module._LIVE[0]

    async def broken(texts: list[str]) -> Any:
        raise RuntimeError("MARKER-789 model exploded")

    monkeypatch.setattr(live, "answer_predict", broken)
    resp = client.post("/predict", json={"texts": ["x"]})
    assert resp.status_code == 500
    assert resp.json() == {
        "error": "An unexpected error has occurred, please check the server log."
    }
    assert "MARKER-789" not in resp.text
