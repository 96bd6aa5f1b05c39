"""The change-review web app: AOI pages with the annual maps, change polygons, review buttons and charts.

A FastAPI app mounted by Airflow's api-server (``eo_review_plugin.py``), so reviewers use the
Airflow they already log in to. Pages are server-rendered Jinja2 (autoescaped) with one JavaScript
file that puts data on the page as text only; the map and chart libraries (Leaflet, Chart.js) are
served from ``node_modules`` installed by ``scripts/setup.sh`` from the committed
``package-lock.json``: no CDN, it works offline. The map is drawn from XYZ tiles cut from the COGs
(``tiles.py``).

Who may do what (``auth.py``): any Airflow user may look; a review needs edit access to the AOI's
``maps_<aoi>`` DAG and a same-origin request (CSRF token); the reviewer is the logged-in user.
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
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from eo_review import db
from eo_review.auth import (
    User,
    can_review,
    check_csrf,
    csrf_token,
    require_review_permission,
    set_csrf_cookie,
    user_name,
)
from eo_review.tiles import MAX_ZOOM, TileCache, cog_version
from eo_tasks.core.errors import CatalogError, ConfigError, EOError
from eo_tasks.core.settings import data_dir
from eo_tasks.maps.review import Review, apply_review
from eo_tasks.store import review as review_store

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
# Installed next to the plugin by scripts/setup.sh; the docker image installs them elsewhere, since
# compose mounts plugins/ read-only from the host.
NODE_MODULES = Path(os.environ.get("EO_REVIEW_NODE_MODULES", HERE / "node_modules"))
Status = Literal["pending", "approved", "rejected"]
TILE_CACHE_SECONDS = 3600  # tile URLs carry the COG's version, so a changed map has new URLs


class ReviewRequest(BaseModel):
    """The body of a review: what to do (the reviewer is the logged-in user, never a body field)."""

    action: Literal["approve", "reject", "relabel"]
    new_class: int | None = None


def create_app(
    connect: Callable[[], PgConnection] = db.connect_store, tile_root: Path | None = None
) -> FastAPI:
    """Builds the review app.

    Args:
        connect: Opens a psycopg2 connection to the store (the ``eo_postgis`` Airflow connection
            by default; tests pass a private schema).
        tile_root: The tile cache (``$EO_DATA_DIR/tiles`` by default).

    Returns:
        The app, to be mounted under a prefix (``/eo-review`` in the api-server).
    """
    app = FastAPI(title="EO change review", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for lib in ("leaflet", "chart.js"):  # check_dir=False: a missing npm ci gives 404s, not a dead plugin
        app.mount(f"/vendor/{lib}", StaticFiles(directory=NODE_MODULES / lib / "dist", check_dir=False))

    def tile_cache() -> TileCache:
        return TileCache(tile_root if tile_root is not None else data_dir() / "tiles")

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

    def base_of(request: Request) -> str:
        return str(request.scope.get("root_path", ""))

    def page(request: Request, name: str, context: dict[str, Any]) -> Response:
        token = csrf_token(request)
        context = {"request": request, "base": base_of(request), "csrf_token": token, **context}
        response = templates.TemplateResponse(request, name, context)
        set_csrf_cookie(request, response, token, base_of(request))
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, user: User) -> Response:
        with store() as conn:
            aois = review_store.list_aois(conn)
        return page(request, "index.html", {"user": user_name(user), "aois": aois})

    @app.get("/aoi/{aoi}", response_class=HTMLResponse)
    def aoi_page(request: Request, aoi: str, user: User) -> Response:
        with store() as conn:
            maps = known_aoi(conn, aoi)
        context = {
            "user": user_name(user),
            "aoi": aoi,
            "years": [m["year"] for m in maps],
            "can_review": can_review(user, aoi),
            "classes": db.class_legend(),
            "max_zoom": MAX_ZOOM,
        }
        return page(request, "aoi.html", context)

    @app.get("/api/aois")
    def api_aois(user: User) -> list[dict[str, Any]]:
        with store() as conn:
            return review_store.list_aois(conn)

    @app.get("/api/aois/{aoi}/maps")
    def api_maps(request: Request, aoi: str, user: User) -> list[dict[str, Any]]:
        with store() as conn:
            maps = known_aoi(conn, aoi)
        base = base_of(request)
        for m in maps:  # the server's file paths stay on the server
            try:
                version = cog_version(m["cog_path"])
            except FileNotFoundError:
                version = "missing"
            del m["cog_path"]
            m["tiles"] = f"{base}/tiles/{quote(aoi, safe='')}/{m['year']}/{{z}}/{{x}}/{{y}}.png?v={version}"
        return maps

    @app.get("/tiles/{aoi}/{year}/{z}/{x}/{y}.png")
    def tile(
        aoi: str,
        year: int,
        z: Annotated[int, PathParam(ge=0, le=MAX_ZOOM)],
        x: Annotated[int, PathParam(ge=0)],
        y: Annotated[int, PathParam(ge=0)],
        user: User,
    ) -> Response:
        with store() as conn:
            found = [m for m in known_aoi(conn, aoi) if m["year"] == year]
        if not found:
            raise HTTPException(404, f"no {year} map for AOI {aoi!r}")
        try:
            png = tile_cache().tile(aoi, year, found[0]["cog_path"], found[0]["extent_3857"], z, x, y)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        except FileNotFoundError as exc:
            raise HTTPException(404, f"the {year} map of {aoi!r} is missing on the server") from exc
        except ConfigError as exc:
            raise HTTPException(500, str(exc)) from exc
        headers = {"Cache-Control": f"private, max-age={TILE_CACHE_SECONDS}"}
        return Response(png, media_type="image/png", headers=headers)

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

    @app.post("/api/changes/{change_id}/review", dependencies=[Depends(check_csrf)])
    def api_review(change_id: int, body: ReviewRequest, user: User) -> dict[str, Any]:
        with store() as conn:
            before = review_store.change_row(conn, change_id)
            if before is None:
                raise HTTPException(404, f"no change {change_id}")
            require_review_permission(user, str(before["aoi"]))
            try:
                review = Review(change_id, body.action, user_name(user), body.new_class)
            except ConfigError as exc:
                raise HTTPException(422, str(exc)) from exc
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
