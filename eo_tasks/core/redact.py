"""The one place secrets are taken out of text before it is logged, stored or raised.

Signed URLs carry their credentials in the query string (Planetary Computer SAS tokens: ``sig``,
``se``, ``st``, ``sp``, ``skoid``…; S3 presigned URLs: ``X-Amz-Signature``…; OAuth ``token`` and
``access_token``); HTTP errors may echo ``Authorization`` headers. :func:`redact` replaces their
values with ``REDACTED`` and leaves everything else (host, path, parameter names) readable.
"""

from __future__ import annotations

import re

REDACTED = "REDACTED"
# Query parameters whose value is a credential (case-insensitive, matched as whole names).
SECRET_PARAMS = (
    "sig",
    "se",
    "st",
    "sp",
    "sv",
    "sr",
    "spr",
    "srt",
    "ss",
    "skoid",
    "sktid",
    "skt",
    "ske",
    "sks",
    "skv",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "key",
    "password",
    "client_secret",
    "code",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
)
_NAMES = "|".join(re.escape(p) for p in SECRET_PARAMS)
_PARAM = re.compile(r"(?P<lead>[?&;]|&amp;)(?P<name>" + _NAMES + r")=(?P<value>[^&#\s\"'<>]*)", re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)


def redact(text: object) -> str:
    """``text`` (any object, as ``str``) with credential values replaced by ``REDACTED``.

    Args:
        text: A message, URL, exception or reason.

    Returns:
        The same text without signed-URL query values, bearer/basic tokens or ``user:password@``.
    """
    value = str(text)
    value = _PARAM.sub(lambda m: f"{m.group('lead')}{m.group('name')}={REDACTED}", value)
    value = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", value)
