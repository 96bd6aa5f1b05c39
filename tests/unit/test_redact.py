"""Secrets out of text, log records and exception chains (eo_tasks.core.redact)."""

from __future__ import annotations

import logging
import traceback

import pytest

from eo_tasks.core.errors import DownloadError
from eo_tasks.core.redact import RedactingFilter, install_log_redaction, redact, scrubbed

SIGNED = "https://acct.blob.core.windows.net/c/B04.tif?st=2024-01-01&se=2024-01-02&sp=rl&sig=S3cr3t%3D"


def test_redact_keeps_the_file_and_drops_the_signature() -> None:
    text = redact(f"GET {SIGNED} failed")
    assert "S3cr3t" not in text and "2024-01-02" not in text
    assert "https://acct.blob.core.windows.net/c/B04.tif?st=REDACTED" in text and "sig=REDACTED" in text


def test_filter_redacts_a_record_with_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact.http")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.DEBUG, logger="test.redact.http"):
        logger.debug('%s "GET %s HTTP/1.1" 200', "host", SIGNED.split(".net")[1])
    assert "S3cr3t" not in caplog.text and "sig=REDACTED" in caplog.text


def test_install_is_idempotent() -> None:
    install_log_redaction(("test.redact.twice",))
    install_log_redaction(("test.redact.twice",))
    filters = logging.getLogger("test.redact.twice").filters
    assert sum(isinstance(f, RedactingFilter) for f in filters) == 1


def test_scrubbed_cause_leaves_no_signature_in_the_traceback() -> None:
    def fail() -> None:
        try:
            try:
                raise ConnectionError(f"reset while reading {SIGNED}")
            except ConnectionError as inner:
                raise OSError(f"503 Server Error for url: {SIGNED}") from inner
        except OSError as err:
            raise DownloadError(redact(f"{SIGNED}: failed")) from scrubbed(err)

    with pytest.raises(DownloadError) as caught:
        fail()
    text = "".join(traceback.format_exception(caught.value))
    assert "S3cr3t" not in text and text.count("sig=REDACTED") == 3
