"""The real bot as its own process (`python -m bot serve`), pointed at the loopback fakes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from tests.fakes import FakeOpenAI, FakeSlackAPI
from tests.harness import SIGNING_SECRET, SlackRequests

ROOT = Path(__file__).resolve().parents[2]


class BotProcess(SlackRequests):
    """`python -m bot serve` (or `work`) pointed at the fakes; faults come from outside."""

    def __init__(
        self,
        slack: FakeSlackAPI,
        model: FakeOpenAI,
        database_url: str,
        *,
        log_path: Path,
        command: tuple[str, ...] = ("serve",),
        **settings: str,
    ) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "OPENAI_API_KEY": "test-key",
            "OPENAI_BASE_URL": model.base_url,
            "DATABASE_URL": database_url,
            "AUTO_MIGRATE": "false",
            "MODEL_MAX_RETRIES": "0",
            "LOG_LEVEL": "INFO",
            "TURN_POLL_SECONDS": "0.2",
            **settings,
        }
        self.log_path = log_path
        self._log = log_path.open("a")
        self.accepts = command[0] == "serve"
        port = ("--port", str(self.port)) if self.accepts else ()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", *command, *port],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        super().__init__(f"http://127.0.0.1:{self.port}", slack)
        self._wait_healthy()

    def __enter__(self) -> BotProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

    def _wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        if not self.accepts:  # `work` serves nothing: give it a moment to start, then check
            time.sleep(2.0)
            if self.process.poll() is not None:
                raise RuntimeError(f"the bot did not start:\n{self.log()}")
            return
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the bot did not start:\n{self.log()}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """`kill -9`: the process ends on the spot."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, as a deploy sends; the exit code once it has stopped."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code

    def log(self) -> str:
        """Everything the process printed so far."""
        self._log.flush()
        return self.log_path.read_text()
