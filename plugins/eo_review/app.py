"""The change-review web app: AOI pages with the annual maps, change polygons, review buttons and charts.

A FastAPI app mounted by Airflow's api-server (``eo_review_plugin.py``), so reviewers use the
Airflow they already log in to. Pages are server-rendered Jinja2 with one JavaScript file; the map
and chart libraries (Leaflet, Chart.js) are served from ``node_modules`` installed by
``scripts/setup.sh`` from the committed ``package-lock.json``: no CDN, it works offline.

Airflow does not guard a plugin's routes, so every data route here asks Airflow's auth manager who
the caller is (the ``Authorization`` header or the UI's ``_token`` cookie) and answers 401 without a
valid token. With ``[core] simple_auth_manager_all_admins`` everyone is the same "Anonymous" admin,
so the page then asks for the reviewer's name; otherwise the logged-in user's name is recorded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from eo_review import db
from eo_review.render import map_png
from eo_tasks.core.errors import CatalogError, ConfigError, EOError
from eo_tasks.maps.review import Review, apply_review
from eo_tasks.store import review as review_store

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
# Installed next to the plugin by scripts/setup.sh; the docker image installs them elsewhere, since
# compose mounts plugins/ read-only from the host.
NODE_MODULES = Path(os.environ.get("EO_REVIEW_NODE_MODULES", HERE / "node_modules"))
ANONYMOUS_ADMIN = "Anonymous"  # the one user of SimpleAuthManager's all-admins mode
Status = Literal["pending", "approved", "rejected"]


class ReviewRequest(BaseModel):
    """The body of a review: what to do and, where Airflow cannot tell, who decides."""

    action: Literal["approve", "reject", "relabel"]
    reviewer: str | None = Field(default=None, max_length=100)
    new_class: int | None = None


async def airflow_user(request: Request) -> str | None:
    """The name of the Airflow user the request is authenticated as, or ``None``.

    Args:
        request: The incoming request (bearer token or the Airflow UI's ``_token`` cookie).

    Returns:
        The user name, ``None`` without a valid token.
    """
    from airflow.api_fastapi.app import get_auth_manager

    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get("_token")
    if not token:
        return None
    try:
        user = await get_auth_manager().get_user_from_token(token)
    except Exception as exc:  # expired, forged, or no auth manager in this process: not logged in
        log.info("eo-review: token refused: %s", exc)
        return None
    return str(user.get_name())


async def require_user(request: Request) -> str:
    """FastAPI dependency: the logged-in Airflow user; 401 otherwise."""
    user = await airflow_user(request)
    if user is None:
        raise HTTPException(401, "not logged in to Airflow: open the review page from the Airflow UI")
    return user


User = Annotated[str, Depends(require_user)]


def create_app(connect: Callable[[], PgConnection] = db.connect_store) -> FastAPI:
    """Builds the review app.

    Args:
        connect: Opens a psycopg2 connection to the store (the ``eo_postgis`` Airflow connection
            by default; tests pass a private schema).

    Returns:
        The app, to be mounted under a prefix (``/eo-review`` in the api-server).
    """
    app = FastAPI(title="EO change review", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for lib in ("leaflet", "chart.js"):  # check_dir=False: a missing npm ci gives 404s, not a dead plugin
        app.mount(f"/vendor/{lib}", StaticFiles(directory=NODE_MODULES / lib / "dist", check_dir=False))

    @contextmanager
    def store() -> Iterator[PgConnection]:
        try:
            conn = connect()
        except Exception as exc:
            log.exception("eo-review: cannot reach the store")
            raise HTTPException(503, f"the PostGIS store is unreachable: {type(exc).__name__}") from exc
        try:
            yield conn
        finally:
            conn.close()

    def known_aoi(conn: PgConnection, aoi: str) -> list[dict[str, Any]]:
        maps = review_store.list_maps(conn, aoi)
        if not maps:
            raise HTTPException(404, f"no maps for AOI {aoi!r}")
        return maps

    def page_context(request: Request, user: str) -> dict[str, Any]:
        return {
            "request": request,
            "user": None if user == ANONYMOUS_ADMIN else user,
            "base": str(request.scope.get("root_path", "")),
        }

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, user: User) -> Response:
        with store() as conn:
            aois = review_store.list_aois(conn)
        context = {**page_context(request, user), "aois": aois}
        return templates.TemplateResponse(request, "index.html", context)

    @app.get("/aoi/{aoi}", response_class=HTMLResponse)
    def aoi_page(request: Request, aoi: str, user: User) -> Response:
        with store() as conn:
            maps = known_aoi(conn, aoi)
        context = {**page_context(request, user), "aoi": aoi, "years": [m["year"] for m in maps]}
        return templates.TemplateResponse(request, "aoi.html", {**context, "classes": db.class_legend()})

    @app.get("/api/aois")
    def api_aois(user: User) -> list[dict[str, Any]]:
        with store() as conn:
            return review_store.list_aois(conn)

    @app.get("/api/aois/{aoi}/maps")
    def api_maps(request: Request, aoi: str, user: User) -> list[dict[str, Any]]:
        with store() as conn:
            maps = known_aoi(conn, aoi)
        base = str(request.scope.get("root_path", ""))
        for m in maps:  # the server's file paths stay on the server
            del m["cog_path"]
            m["image"] = f"{base}/api/aois/{quote(aoi, safe='')}/maps/{m['year']}.png"
        return maps

    @app.get("/api/aois/{aoi}/maps/{year}.png")
    def api_map_png(aoi: str, year: int, user: User) -> Response:
        with store() as conn:
            found = [m for m in known_aoi(conn, aoi) if m["year"] == year]
        if not found:
            raise HTTPException(404, f"no {year} map for AOI {aoi!r}")
        try:
            png = map_png(found[0]["cog_path"], found[0]["extent_3857"])
        except FileNotFoundError as exc:
            raise HTTPException(404, str(exc)) from exc
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/aois/{aoi}/changes")
    def api_changes(
        aoi: str, user: User, year: int | None = None, status: Annotated[Status | None, Query()] = None
    ) -> dict[str, Any]:
        with store() as conn:
            known_aoi(conn, aoi)
            return review_store.changes_geojson(conn, aoi, year, status)

    @app.get("/api/aois/{aoi}/stats")
    def api_stats(aoi: str, user: User) -> dict[str, Any]:
        with store() as conn:
            known_aoi(conn, aoi)
            return review_store.change_stats(conn, aoi)

    @app.post("/api/changes/{change_id}/review")
    def api_review(change_id: int, body: ReviewRequest, user: User) -> dict[str, Any]:
        reviewer = (body.reviewer or "").strip() if user == ANONYMOUS_ADMIN else user
        if not reviewer:
            raise HTTPException(422, "enter the reviewer's name (Airflow runs without logins here)")
        try:
            review = Review(change_id, body.action, reviewer, body.new_class)
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from exc
        with store() as conn:
            try:
                outcome = apply_review(conn, review)
            except CatalogError as exc:
                raise HTTPException(404, str(exc)) from exc
            except (EOError, OSError) as exc:
                log.exception("eo-review: review of change %s failed", change_id)
                raise HTTPException(500, f"the review could not be applied: {exc}") from exc
            row = review_store.change_row(conn, change_id)
        return {
            "change": row,
            "maps_updated": list(outcome.maps_updated),
            "pixels_updated": outcome.pixels_updated,
        }

    return app


app = create_app()
