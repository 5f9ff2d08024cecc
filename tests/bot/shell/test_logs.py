"""Message content stays out of the logs, even at DEBUG, unless LOG_CONTENT=true."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from bot.shell.logs import configure_logging
from bot.shell.settings import Settings
from tests.fakes import FakeOpenAI, FakeReply
from tests.harness import SlackAppHarness

QUESTION = "my-secret-question-7f3a"
ANSWER = "the-private-answer-91bc"


@pytest.fixture(autouse=True)
def _restore_logger_levels() -> Iterator[None]:
    """configure_logging changes global loggers; put every level back afterwards."""
    manager = logging.root.manager
    before = {
        name: logger.level
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root_level = logging.root.level
    yield
    for name, logger in list(manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            logger.setLevel(before.get(name, logging.NOTSET))
    logging.root.setLevel(root_level)


def converse(
    make_app: Callable[..., SlackAppHarness], model: FakeOpenAI, *, log_content: bool
) -> None:
    configure_logging(Settings(log_level="DEBUG", log_content=log_content))
    logging.root.setLevel(logging.DEBUG)
    app = make_app(log_level="DEBUG", log_content=log_content)
    model.enqueue(FakeReply(ANSWER, chunk_size=64))
    app.mention(QUESTION)
    app.wait_idle()


def test_at_debug_message_text_stays_out_of_the_logs(
    make_app: Callable[..., SlackAppHarness], model: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    converse(make_app, model, log_content=False)
    assert caplog.records  # DEBUG logging is on
    assert QUESTION not in caplog.text
    assert ANSWER not in caplog.text


def test_with_log_content_the_libraries_log_whole_requests(
    make_app: Callable[..., SlackAppHarness], model: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    converse(make_app, model, log_content=True)
    assert ANSWER in caplog.text  # slack_sdk logs the reply it sends
