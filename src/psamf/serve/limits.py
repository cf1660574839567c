"""ASGI middleware for the limits a handler cannot enforce itself: the body size (counted while it
streams in, so a client that lies in Content-Length is cut off too), the content type of each POST
route, and the number of requests in flight."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def error_body(status: int, field: str | None, message: str) -> dict[str, Any]:
    """The one error shape of the API: ``{"error": {"status", "field", "message"}}``."""
    return {"error": {"status": status, "field": field, "message": message}}


class BodyTooLarge(HTTPException):
    """Raised from inside the body stream; an HTTPException so FastAPI's body parsing lets it
    through (it turns other exceptions into a bare 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, {"field": "body",
                               "message": f"request body is over the limit of {limit} bytes"})


class LimitsMiddleware:
    """``routes``: path -> (content type it accepts, largest body in bytes)."""

    def __init__(self, app: Any, *, routes: dict[str, tuple[str, int]], max_concurrent: int):
        self.app = app
        self.routes = routes
        self.max_concurrent = max_concurrent
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        kind, limit = route
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        given = headers.get("content-type", "").split(";")[0].strip().lower()
        if given != kind:
            await _reply(send, 415, "content-type",
                         f"Content-Type {given or '(none)'!r} is not accepted here; send {kind}")
            return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reply(send, 413, "body", f"request body of {declared} bytes is over the "
                                            f"limit of {limit} bytes")
            return
        if self.in_flight >= self.max_concurrent:
            await _reply(send, 503, None, f"server busy: {self.in_flight} requests in flight "
                                          f"(limit {self.max_concurrent}); retry shortly",
                         extra=[(b"retry-after", b"1")])
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        self.in_flight += 1
        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as err:  # raised where no handler turned it into a reply
            if not started:
                await _reply(send, 413, "body", err.detail["message"])
        finally:
            self.in_flight -= 1


async def _reply(send: Send, status: int, field: str | None, message: str,
                 extra: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(error_body(status, field, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})
