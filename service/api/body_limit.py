"""Refuses request bodies over a size limit with 413, before any route reads them."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1 << 20  # JSON bodies here are a few kB; only attachment uploads are larger (see ``larger``)
# A route that takes bigger bodies: scope -> (its limit, what the 413 says), or None for the default.
LargerLimit = Callable[[Scope], "tuple[int, str] | None"]


class BodyTooLarge(HTTPException):
    """Raised while reading a body that declared no length and turned out too long; an HTTPException so routes answer 413."""

    def __init__(self, max_bytes: int, detail: str = "") -> None:
        super().__init__(413, detail or f"request body is larger than {max_bytes} bytes")


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, larger: LargerLimit | None = None) -> None:
        self.app, self.max_bytes, self.larger = app, max_bytes, larger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        special = self.larger(scope) if self.larger is not None else None
        max_bytes, detail = special if special is not None else (self.max_bytes, f"request body is larger than {self.max_bytes} bytes")
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._refuse(send, detail)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:  # chunked uploads declare no length
                    raise BodyTooLarge(max_bytes, detail)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, detail)

    async def _refuse(self, send: Send, detail: str) -> None:
        body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
