"""Hostile requests: oversized, unsigned or unreadable bodies are refused cheaply and quietly."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
from urllib.parse import urlencode, urlsplit

import pytest

from bot.shell.request_guard import MAX_BODY_BYTES
from bot.shell.server import wsgi_app
from tests.harness import SlackAppHarness

FORM = "application/x-www-form-urlencoded"


def _start_post(app: SlackAppHarness, headers: dict[str, str]) -> http.client.HTTPConnection:
    """A POST to /slack/events whose headers are sent and whose body is up to the caller."""
    address = urlsplit(app.url)
    assert address.hostname is not None
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    connection.putrequest("POST", "/slack/events")
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    return connection


def test_an_oversized_body_is_refused_with_413_before_it_is_sent(app: SlackAppHarness) -> None:
    connection = _start_post(
        app, {"Content-Type": FORM, "Content-Length": str(100 * MAX_BODY_BYTES)}
    )
    try:
        assert connection.getresponse().status == 413  # on the headers alone
    finally:
        connection.close()


def test_an_oversized_chunked_body_is_refused_with_413(app: SlackAppHarness) -> None:
    connection = _start_post(app, {"Content-Type": FORM, "Transfer-Encoding": "chunked"})
    chunk = b"%x\r\n%s\r\n" % (65536, b"A" * 65536)
    try:
        for _ in range(MAX_BODY_BYTES // 65536 + 1):
            connection.send(chunk)
        assert connection.getresponse().status == 413
    finally:
        connection.close()


def test_a_forged_request_over_the_limit_is_not_logged(
    app: SlackAppHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = b"payload=" + b"A" * (MAX_BODY_BYTES + 1)
    # Refused, and possibly hung up on while the body was still on its way.
    with contextlib.suppress(OSError):
        app.post(body, content_type=FORM, secret="forged")
    assert "AAAAAAAA" not in caplog.text


def test_the_app_refuses_from_content_length_without_reading(app: SlackAppHarness) -> None:
    class Unreadable(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("the body was read")

    statuses: list[str] = []
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": FORM,
        "CONTENT_LENGTH": str(100 * MAX_BODY_BYTES),
        "wsgi.input": Unreadable(),
    }
    wsgi_app(app.runtime)(environ, lambda status, headers: statuses.append(status))
    assert [s.split()[0] for s in statuses] == ["413"]


def test_a_forged_request_is_logged_in_one_line_without_its_body(
    app: SlackAppHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = urlencode({"command": "/model", "text": "secret-words", "team_id": "T0001"}).encode()
    result = app.post(body, content_type=FORM, secret="forged")
    assert result.status == 401
    assert "secret-words" not in caplog.text
    [refusal] = [r for r in caplog.records if "invalid signature" in r.getMessage()]
    assert refusal.levelno == logging.INFO


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'["a", "list"]', "application/json"),
        (b"null", "application/json"),
        (b'{"team": 5, "type": "event_callback"}', "application/json"),
        (b"command=/model&text=\xff\xfe", FORM),
        (b"payload=%7Bnot+json", FORM),
        (b"payload=%5B1%5D", FORM),
        (urlencode({"payload": json.dumps({"authorizations": "x"})}).encode(), FORM),
    ],
    ids=[
        "not-json", "json-list", "json-null", "wrong-types", "not-utf8", "payload-not-json",
        "payload-list", "payload-wrong-types",
    ],
)  # fmt: skip
def test_a_signed_but_unreadable_body_answers_400_without_a_traceback(
    app: SlackAppHarness, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str
) -> None:
    caplog.set_level(logging.INFO)
    result = app.post(body, content_type=content_type)
    assert result.status == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
