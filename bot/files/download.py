"""Downloading a shared file from Slack: the bot token goes to Slack's own hosts only.

Slack answers a download it does not allow (no `files:read`, a token of another workspace)
with 200 and its HTML sign-in page: HTML is never taken for the file's content. The read
stops at `max_bytes` whatever `size` Slack declared.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx2

from bot.files.kinds import SlackFile
from bot.files.problems import FileProblem

log = logging.getLogger(__name__)

# Slack's file hosts (files.slack.com, and GovSlack's files.slack-gov.com), which may redirect
# to the same families of hosts; the host of SLACK_API_URL is added when it is set.
SLACK_FILE_HOSTS = ("slack.com", "slack-edge.com", "slack-files.com", "slack-gov.com")
MAX_REDIRECTS = 3
TIMEOUT = httpx2.Timeout(10.0, read=30.0)
# The whole of one download, however the bytes come: 20 MB at 1 MB/s and then some.
DOWNLOAD_SECONDS = 60.0
SCOPE = "files:read"  # the bot scope downloads need (app.yaml grants it)


@dataclass(frozen=True)
class Downloaded:
    """A file's bytes, and the type its host said they are."""

    data: bytes
    content_type: str


class FileDownloader:
    """Fetches `url_private_download` with the workspace's bot token, within `max_bytes`."""

    def __init__(
        self,
        *,
        token_for: Callable[[str], str | None],
        max_bytes: int,
        api_url: str | None = None,
        client: httpx2.Client | None = None,
    ) -> None:
        self._token_for = token_for
        self.max_bytes = max_bytes
        self._extra_host = _origin(api_url) if api_url else None
        self._client = client or httpx2.Client(timeout=TIMEOUT, follow_redirects=False)

    def trusted(self, url: str) -> bool:
        """Whether `url` is on a host the bot token may be sent to."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if self._extra_host is not None and (parts.scheme, host, parts.port) == self._extra_host:
            return True
        if parts.scheme != "https":
            return False
        return any(host == name or host.endswith("." + name) for name in SLACK_FILE_HOSTS)

    def download(self, team_id: str, file: SlackFile) -> Downloaded:
        """The file's bytes; raises `FileProblem` when they cannot be had."""
        if file.size is not None and file.size > self.max_bytes:
            raise FileProblem(_too_big(file.size, self.max_bytes))
        url = file.url
        if url is None:
            raise FileProblem("Slack gave me no link to download it")
        token = self._token_for(team_id)
        if not token:
            raise FileProblem("I have no token for this workspace to download it with")
        for _ in range(MAX_REDIRECTS + 1):
            if not self.trusted(url):
                log.warning("not downloading file %s from an untrusted host", file.id)
                raise FileProblem("its link is not on Slack's own file servers")
            headers = {"Authorization": f"Bearer {token}"}
            try:
                with self._client.stream("GET", url, headers=headers) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    return self._read(file, response)
            except httpx2.HTTPError as exc:
                raise FileProblem(
                    "downloading it from Slack failed", detail=f"{type(exc).__name__}: {exc}"
                ) from exc
        raise FileProblem("Slack sent me in circles trying to download it")

    def _read(self, file: SlackFile, response: httpx2.Response) -> Downloaded:
        if response.status_code in (404, 410):
            raise FileProblem("it is no longer on Slack (deleted?)")
        if response.status_code in (401, 403):
            raise FileProblem(_NOT_ALLOWED)
        if response.status_code != 200:
            raise FileProblem("Slack did not hand it over", detail=f"HTTP {response.status_code}")
        content_type = response.headers.get("content-type", "").lower()
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FileProblem(_too_big(int(declared), self.max_bytes))
        if content_type.startswith("text/html"):
            # Slack's sign-in page: the download was not allowed. An HTML file people share
            # cannot be told from it, so HTML is never read (nor its body downloaded).
            raise FileProblem(_NOT_ALLOWED, detail="an HTML page instead of the file")
        chunks: list[bytes] = []
        got = 0
        # The client's read timeout bounds each wait; this bounds a host that trickles bytes.
        ends = time.monotonic() + DOWNLOAD_SECONDS
        for chunk in response.iter_bytes():
            got += len(chunk)
            if got > self.max_bytes:
                # Over the cap whatever `size` said: stop reading, drop what came.
                raise FileProblem(f"it is larger than the {_mb(self.max_bytes)} I read")
            if time.monotonic() > ends:
                raise FileProblem("Slack took too long to hand it over")
            chunks.append(chunk)
        return Downloaded(b"".join(chunks), content_type)

    def close(self) -> None:
        """Close the connections."""
        self._client.close()


_NOT_ALLOWED = (
    "Slack did not let me download it (the app may need to be reinstalled with the "
    "files:read permission)"
)


def _too_big(size: int, cap: int) -> str:
    return f"it is {_mb(size)}, more than the {_mb(cap)} I read"


def _mb(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB" if size < 10_000_000 else f"{size / 1_000_000:,.0f} MB"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port
