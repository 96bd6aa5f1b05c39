"""Who may look and who may act on the review page: Airflow's auth manager, and a CSRF defence.

Airflow does not guard a plugin's routes, so every route asks Airflow's own FastAPI security helper
(``airflow.api_fastapi.core_api.security.get_user``: the ``Authorization`` bearer token, else the
UI's ``_token`` cookie) who the caller is; no valid token is a 401 (an invalid one a 403, as for
Airflow's REST API). Looking needs any logged-in user. A review rewrites the AOI's maps, so it needs
the permission to edit the AOI's maps DAG, ``maps_<aoi>`` (``PUT`` on the DAG): a Viewer can look,
not act. The reviewer recorded is the auth manager's user name, never a value from the request.

State-changing requests carry a double-submit token: the page sets a random ``eo_review_csrf``
cookie (``SameSite=Strict``, scoped to the plugin) and its script repeats it in the ``X-CSRF-Token``
header; another site can neither read the cookie nor set the header. An ``Origin`` header, when
the browser sends one, must also be this server's. This matters most with SimpleAuthManager's
all-admins mode, where the api-server adds an admin token to *every* request, a forged one included.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from fastapi import Depends, HTTPException, Request, Response

CSRF_COOKIE = "eo_review_csrf"
CSRF_HEADER = "X-CSRF-Token"


async def current_user(request: Request) -> BaseUser:
    """FastAPI dependency: the Airflow user of the request (401 without a token, 403 if forged).

    Args:
        request: The incoming request.

    Returns:
        The auth manager's user.
    """
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPAuthorizationCredentials

    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    bearer = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if token else None
    return await get_user(request, None, bearer)


User = Annotated[BaseUser, Depends(current_user)]


def user_name(user: BaseUser) -> str:
    """The name a review is recorded under: the auth manager's, never the request's."""
    return str(user.get_name())


def maps_dag_id(aoi: str) -> str:
    """The DAG whose edit permission a review of ``aoi`` needs."""
    return f"maps_{aoi}"


def can_review(user: BaseUser, aoi: str) -> bool:
    """Whether ``user`` may edit the AOI's maps DAG (``PUT``), which a review needs.

    Args:
        user: The auth manager's user.
        aoi: The AOI of the change.

    Returns:
        The auth manager's answer.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.configuration import conf

    dag_id = maps_dag_id(aoi)
    team = None
    if conf.getboolean("core", "multi_team", fallback=False):
        from airflow.models.dag import DagModel

        team = DagModel.get_team_name(dag_id)
    details = DagDetails(id=dag_id, team_name=team)
    return bool(get_auth_manager().is_authorized_dag(method="PUT", details=details, user=user))


def require_review_permission(user: BaseUser, aoi: str) -> None:
    """403 unless ``user`` may review changes of ``aoi`` (see :func:`can_review`)."""
    if not can_review(user, aoi):
        raise HTTPException(
            403,
            f"{user_name(user)!r} may not review changes of {aoi!r}: "
            f"needs edit access to DAG {maps_dag_id(aoi)}",
        )


def csrf_token(request: Request) -> str:
    """The page's double-submit token: the request's cookie, or a new random one.

    Args:
        request: The page request.

    Returns:
        The token the page's script sends back in :data:`CSRF_HEADER`.
    """
    token = request.cookies.get(CSRF_COOKIE, "")
    return token if len(token) >= 32 else secrets.token_urlsafe(32)


def set_csrf_cookie(request: Request, response: Response, token: str, path: str) -> None:
    """Sets the token's cookie on the page: strict same-site, script-proof, scoped to the plugin.

    Args:
        request: The page request (``https`` makes the cookie secure).
        response: The page response.
        token: From :func:`csrf_token`.
        path: The plugin's prefix (``/eo-review``); ``/`` when mounted at the root.
    """
    response.set_cookie(
        CSRF_COOKIE,
        token,
        path=path or "/",
        samesite="strict",
        httponly=True,
        secure=request.url.scheme == "https",
    )


def _own_hosts(request: Request) -> set[str]:
    """The host names this server answers as: the request's, a proxy's, and ``[api] base_url``'s."""
    from airflow.configuration import conf

    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")}
    base_url = conf.get("api", "base_url", fallback=None)
    if base_url:
        hosts.add(urlsplit(base_url).netloc)
    return hosts - {""}


def check_csrf(request: Request) -> None:
    """FastAPI dependency of every state-changing route: 403 unless the request is same-origin.

    Raises:
        HTTPException: 403 without a matching cookie and header, or from another origin.
    """
    origin = request.headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        if parts.netloc not in _own_hosts(request) or parts.scheme not in ("http", "https"):
            raise HTTPException(403, f"cross-origin request refused (Origin {origin!r})")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
        raise HTTPException(403, "missing or wrong CSRF token: reload the review page")
