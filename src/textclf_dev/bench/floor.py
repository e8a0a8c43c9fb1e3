"""The HTTP stack's floor: a bare ASGI app that answers ``/predict`` with a canned prediction.

Served by uvicorn with the loop and HTTP parser ``bentoml serve`` uses, it does what every
request to the service costs before any service code runs: accept, parse, read the body, write
a response of the same size. Its CPU per request is what no change to the service can go below
on the machine measured (:func:`textclf_dev.bench.serving.overhead`).
"""

from __future__ import annotations

import json

from textclf.serving import ids
from textclf.serving.middleware import Receive, Scope, Send

VERSION = "0123456789ab"  # as long as a model version (12 hex)
BODY = json.dumps(  # the service's answer to one text, to the byte count
    [
        {
            "id": ids.mint(b"floor", VERSION, "positive"),
            "label": "positive",
            "probabilities": {
                "negative": 0.04919351613234514,
                "neutral": 0.10672391748428345,
                "positive": 0.8440825939178467,
            },
            "model_version": VERSION,
        }
    ],
    separators=(",", ":"),
).encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the request's body, answer the canned prediction (any path, any method)."""
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
