"""API documentation with no CDN: Swagger UI at /docs and ReDoc at /redoc, assets served here.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (and ReDoc's fonts from Google), so
they render nothing offline or in an air-gapped deployment, and a Content-Security-Policy has to
let the CDN in. These pages are FastAPI's, pointed at files this app serves (Swagger UI's page
still starts the UI with an inline script).

The files come from the fastapi-offline package, pinned in pyproject.toml: it ships current
Swagger UI 5 and ReDoc 2 builds and follows their releases, while swagger-ui-bundle, the other
package that ships such files, carries Swagger UI 4 and no ReDoc. Licences: fastapi-offline
MIT, Swagger UI Apache-2.0, ReDoc MIT; the files are served unmodified, with their licence
comments, and the README names them.

API_DOCS=false turns every route here, the schema included, into a 404, as if it did not exist.
"""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from {{ cookiecutter.project_slug }}.api.deps import SettingsDep

ASSETS_DIRECTORY = Path(fastapi_offline.__file__).parent / "static"
ASSETS_PATH = "/docs/assets"
# The files served, by name: nothing else in the directory is reachable.
ASSET_MEDIA_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}


async def require_api_docs(settings: SettingsDep) -> None:
    if not settings.api_docs:
        raise HTTPException(status.HTTP_404_NOT_FOUND)


router = APIRouter(include_in_schema=False, dependencies=[Depends(require_api_docs)])


def root_path(request: Request) -> str:
    """The path prefix a proxy serves the app under (uvicorn's --root-path), for page links."""
    prefix: str = request.scope.get("root_path", "")
    return prefix.rstrip("/")


@router.get("/openapi.json")
async def openapi_schema(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = root_path(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = root_path(request)
    return get_redoc_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        with_google_fonts=False,
    )


@router.get("/docs/assets/{name}")
async def docs_asset(name: str) -> FileResponse:
    if (media_type := ASSET_MEDIA_TYPES.get(name)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return FileResponse(ASSETS_DIRECTORY / name, media_type=media_type)
