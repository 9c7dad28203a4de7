"""``/docs`` that works offline: Swagger UI from the ``fastapi-offline`` package, not a CDN.

FastAPI's default ``/docs`` page loads Swagger UI's script and stylesheet from a CDN, so on a
machine without internet access (or behind a strict proxy) it was a blank page. The same files
ship inside the ``fastapi-offline`` wheel (Swagger UI 5: FastAPI's schema is OpenAPI 3.1, which
the 4.x files of ``swagger-ui-bundle`` refuse to render); they are served here under
``/docs/assets/`` and the page is FastAPI's own ``get_swagger_ui_html`` pointed at them. Only the
files are used, not the package's ``FastAPIOffline`` app.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
# only what the page loads: the bundle's source maps and ES builds stay unserved
SERVED = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")


def swagger_assets() -> Path | None:
    from importlib.util import find_spec

    spec = find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "static"
    return path if all((path / name).is_file() for name in SERVED) else None


class _OnlyServed(StaticFiles):
    async def get_response(self, path: str, scope):  # noqa: ANN001 - Starlette's signature
        if path not in SERVED:
            path = "missing"  # StaticFiles answers 404
        return await super().get_response(path, scope)


def install_docs(api: FastAPI) -> None:
    """``/docs`` and its OAuth2 redirect; the caller created ``api`` with ``docs_url=None``."""
    assets = swagger_assets()
    if assets is None:
        # still a page, saying what to install, rather than a CDN page that stays blank offline
        @api.get("/docs", include_in_schema=False)
        async def docs_missing() -> HTMLResponse:
            return HTMLResponse("<!doctype html><title>CineAgent API</title><p>Swagger UI is not installed: "
                                "<code>pip install fastapi-offline</code>. The schema is at "
                                "<a href='/openapi.json'>/openapi.json</a>.</p>", status_code=503)
        return

    api.mount(ASSETS, _OnlyServed(directory=assets), name="swagger-assets")

    @api.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=api.openapi_url or "/openapi.json", title=f"{api.title} API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon.png",
                                   oauth2_redirect_url="/docs/oauth2-redirect")

    @api.get("/docs/oauth2-redirect", include_in_schema=False)
    async def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
