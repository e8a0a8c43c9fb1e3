"""The service's JSON APIs answered in its own middleware, without BentoML's per-request machinery.

BentoML 1.4 routes each API request through Starlette's router and exception middleware, its
context middleware, an endpoint that binds the method's signature, builds a request object and an
IO descriptor, and a streaming response wrapped in four more ``send`` layers. Measured with
py-spy on a worker serving a no-op model to one client: that path was about 70% of the worker's
CPU per request, while the service's own work (validate, batch, classify, mint ids, count) was
under 10%. :class:`DirectRoutes` answers ``POST`` on the routes it is given itself: it reads the
body (already capped by :class:`textclf.serving.middleware.RequestLimits`), validates it with the
API's own input model (BentoML's, so a bad body gets the same 400 and the same log line, which
:class:`textclf.serving.service.InputFreeValidationLog` rewrites), awaits the handler and writes
the result serialised by pydantic-core in one ``send``. Everything else, including other methods
on these paths and the requests that arrive before the service instance exists, goes to BentoML
unchanged, so the routes stay documented in ``/docs.json`` and served by BentoML's clients.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.responses import JSONResponse, Response

from textclf.serving.middleware import ASGIApp, Receive, Scope, Send

# BentoML's logger for a rejected request (``Exception on <path> [<method>]`` with the error).
BENTOML_HTTP_LOGGER = logging.getLogger("bentoml._internal.server.http_app")
UNEXPECTED = "An unexpected error has occurred, please check the server log."  # BentoML's words


@dataclass(frozen=True)
class JsonRoute:
    """One API: its input model, the handler of a valid body, and the result's serialiser.

    ``handle`` gets the validated body and returns the result or a ready Starlette
    :class:`~starlette.responses.Response` (e.g. a 503 with ``Retry-After``).
    """

    request: type[BaseModel]
    handle: Callable[[BaseModel], Awaitable[Any]]
    result: TypeAdapter[Any]


class DirectRoutes:
    """Answer ``POST`` on ``routes`` (path to :class:`JsonRoute`) here; see the module docstring.

    ``ready()`` is false until the service instance is loaded (BentoML answers until then);
    ``headers`` are added to every response written here (BentoML's ``Server`` header), and so
    are those ``request_headers()`` gives for the request (its trace ids, when traced).
    """

    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[str, JsonRoute],
        ready: Callable[[], bool],
        headers: Mapping[str, str] | None = None,
        request_headers: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        self.ready = ready
        self.headers = dict(headers or {})
        self.request_headers = request_headers
        self._raw_headers = [
            (b"content-type", b"application/json"),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the routes' POSTs; pass every other request to BentoML."""
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST" or not self.ready():
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client disconnected: nobody to answer
        try:
            request = route.request.model_validate_json(body or b"{}")  # BentoML reads b"" as {}
        except ValidationError as err:
            BENTOML_HTTP_LOGGER.error(
                "Exception on %s [%s]", scope["path"], scope["method"], exc_info=err
            )
            await self._respond(
                scope,
                receive,
                send,
                JSONResponse(
                    {
                        "error": f"{err.error_count()} validation error for {err.title}",
                        "detail": err.errors(include_context=False, include_input=False),
                    },
                    status_code=400,
                ),
            )
            return
        try:
            result = await route.handle(request)
            if not isinstance(result, Response):
                payload = route.result.dump_json(result)
        except Exception:
            BENTOML_HTTP_LOGGER.exception("Exception on %s [%s]", scope["path"], scope["method"])
            result = JSONResponse({"error": UNEXPECTED}, status_code=500)
        if isinstance(result, Response):
            await self._respond(scope, receive, send, result)
            return
        headers = [*self._raw_headers, (b"content-length", str(len(payload)).encode("ascii"))]
        if self.request_headers is not None:
            headers += [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in self.request_headers().items()
            ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _respond(self, scope: Scope, receive: Receive, send: Send, resp: Response) -> None:
        resp.headers.update(self.headers)
        if self.request_headers is not None:
            resp.headers.update(self.request_headers())
        await resp(scope, receive, send)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client disconnects first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
