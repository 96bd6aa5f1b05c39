"""The one place secrets are taken out of text before it is logged, stored or raised.

Signed URLs carry their credentials in the query string (Planetary Computer SAS tokens: ``sig``,
``se``, ``st``, ``sp``, ``skoid``…; S3 presigned URLs: ``X-Amz-Signature``…; OAuth ``token`` and
``access_token``); HTTP errors may echo ``Authorization`` headers. :func:`redact` replaces their
values with ``REDACTED`` and leaves everything else (host, path, parameter names) readable.
"""

from __future__ import annotations

import contextlib
import logging
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


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record with its message run through :func:`redact`.

    HTTP client libraries (urllib3, requests, pystac-client, sentinelsat) log the URLs they request
    at DEBUG level, signed query strings included; this filter on their loggers takes the
    secrets out before any handler formats the record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Replaces the record's message by its redacted rendering (always keeps the record)."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# Loggers that write request URLs: the HTTP stack under every provider, and the platform's own.
HTTP_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.util.retry",
    "requests",
    "pystac_client.stac_api_io",
    "sentinelsat",
    "eo_tasks.ingest.download",
    "eo_tasks.ingest.pipeline",
    "eo_tasks.ingest.providers.stac",
    "eo_tasks.ingest.providers.sentinelsat_hub",
)


def install_log_redaction(names: tuple[str, ...] = HTTP_LOGGERS) -> None:
    """Puts one :class:`RedactingFilter` on each named logger (idempotent).

    A logger's filters see only the records created on that very logger, so each logger that may
    write a URL is named here.
    """
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


def scrubbed(err: BaseException) -> BaseException:
    """``err`` with the text of its arguments redacted in place, along its cause/context chain.

    A platform error is raised ``from`` the library error that caused it, and a task log prints
    the whole chain: an HTTP error's message holds the signed URL it was raised for. Call this on
    the cause before chaining it.

    Args:
        err: The caught exception.

    Returns:
        The same exception object, its string arguments redacted.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        with contextlib.suppress(AttributeError, TypeError):  # exotic exception types keep their args
            current.args = tuple(redact(a) if isinstance(a, str) else a for a in current.args)
        current = current.__cause__ or current.__context__
    return err
