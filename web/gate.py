"""The outermost middleware: bounded headers, only the routes this app uses, and only requests of
the app's own origin (or of no browser page at all: no ``Origin`` header).

Gradio 6 mounts many routes this app never uses, some of them dangerous to leave open:
``/gradio_api/upload`` (anyone may write files to the server's disk), ``/gradio_api/file=...`` and
``/gradio_api/file/...`` (serve files from the cache and allowed paths), ``/gradio_api/proxy=``,
``/gradio_api/run|call|api/{name}`` (call events by name), ``/monitoring``, ``/gradio_api/mcp``,
``/gradio_api/vibe-*``, ``/gradio_api/stream/...``, ``/gradio_api/process_recording``, ``/login``,
``/gradio_api/info`` (the event listing).
Everything outside ``ALLOWED_EXACT`` / ``ALLOWED_PREFIXES`` answers 404, as if it did not exist.

What stays open is what the chat page needs: the page, its config and assets, and the queue
(``/gradio_api/queue/join`` + ``/queue/data`` + ``/heartbeat``). Gradio lets anyone join the
queue for any event by its index, ``api_visibility="private"`` or not, so the UI's events do not
rely on being hidden: each one authenticates its caller itself (the person's token from the
browser's storage, the operator's cookie for the Traces tab).
"""
from __future__ import annotations

from starlette.responses import JSONResponse

from web.auth import same_origin

MAX_HEADER_VALUE_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 32 * 1024
MAX_HEADERS = 100
# what `cineagent serve` lets the HTTP parser buffer for a request line and its headers (h11's
# max_incomplete_event_size): past it the request is refused as it arrives (400, connection
# closed); under it, the limits above answer 431
HEADER_LIMIT_BYTES = 64 * 1024

ALLOWED_EXACT = frozenset({
    "/", "/config", "/config/", "/theme.css", "/robots.txt", "/favicon.ico", "/manifest.json",
    "/healthz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/operator", "/operator/logout",
    # what the page was seen to request (Playwright, Gradio 6.31), plus cancel/reset of its own events
    "/gradio_api/queue/join", "/gradio_api/queue/data", "/gradio_api/cancel", "/gradio_api/reset",
    # the app's id only: the page polls it after losing the server, and carries on once it answers
    "/gradio_api/app_id",
})
ALLOWED_PREFIXES = ("/api/", "/docs/assets/", "/assets/", "/static/", "/svelte/", "/gradio_api/heartbeat/")


def allowed(path: str) -> bool:
    return path in ALLOWED_EXACT or path.startswith(ALLOWED_PREFIXES)


class Gate:
    """404 for routes outside the allow-list, 431 for oversized or too many headers."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = scope.get("headers") or []
        total = sum(len(k) + len(v) for k, v in headers)
        if len(headers) > MAX_HEADERS or total > MAX_HEADERS_BYTES or \
                any(len(v) > MAX_HEADER_VALUE_BYTES for _, v in headers):
            return await self._refuse(scope, receive, send, 431,
                                      f"request headers too large: at most {MAX_HEADERS} headers, "
                                      f"{MAX_HEADER_VALUE_BYTES} bytes each, {MAX_HEADERS_BYTES} in all")
        if not allowed(scope.get("path", "")):
            return await self._refuse(scope, receive, send, 404, "not found")
        named = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers if k.lower() in (b"origin", b"host")}
        if not same_origin(named):
            # a page of another origin (another port of this host included: the same *site*, so
            # SameSite cookies go with it): no CORS, no credentialed read, no write on a visitor's behalf
            return await self._refuse(scope, receive, send, 403, "cross-origin requests are refused: use the "
                                      "app's own page, or a client that sends no Origin")
        return await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope, receive, send, status: int, message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
