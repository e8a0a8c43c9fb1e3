"""ASGI middleware of the service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import JSONResponse

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
JSON_TYPES = (b"", b"application/json")


class JsonOnly:
    """Answer 415 to a POST on ``paths`` whose Content-Type is not JSON.

    BentoML would otherwise parse other media types (multipart forms, pickles) itself and
    answer a malformed one with a 500.
    """

    def __init__(self, app: ASGIApp, paths: tuple[str, ...] = ("/predict",)) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Reject non-JSON bodies on the guarded paths; pass everything else through."""
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            headers = dict(scope.get("headers") or [])
            media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if media not in JSON_TYPES:
                response = JSONResponse(
                    {
                        "error": f"unsupported Content-Type {media.decode('latin-1')!r}. Fix: send "
                        "a JSON body with Content-Type: application/json, e.g. "
                        '{"texts": ["I love this phone"]}.'
                    },
                    status_code=415,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
