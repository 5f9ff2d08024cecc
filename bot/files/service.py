"""Reading a turn's files in its worker, and giving the context what the model sees of them.

Downloads and extraction run in the turn's worker, never before Slack's acknowledgement, at
most `concurrency` at a time per process: with MAX_FILE_BYTES of 20 MB that bounds what files
hold in memory, however many turns run. Images are not stored; the prepared (small) images
of recent turns stay in a cache of `cache_bytes`, and are fetched again when they fell out.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from bot.files.download import FileDownloader
from bot.files.extract import Extracted, extract
from bot.files.images import PreparedImage, prepare_image
from bot.files.kinds import FileKind, SlackFile
from bot.files.problems import FileProblem
from db import files as file_queries
from db.files import FileRow, NewFile

log = logging.getLogger(__name__)

# Pending files read for one turn (its own and those its thread's earlier messages brought).
MAX_FILES_PER_TURN = 10

Describe = Callable[[str, str], SlackFile | None]  # files.info: (team, file id) -> the file


def new_files(files: tuple[SlackFile, ...]) -> list[NewFile]:
    """The rows to store for the files of an incoming message."""
    rows = []
    for file in files:
        state = "deleted" if file.gone else "pending"
        rows.append(
            NewFile(
                slack_file_id=file.id,
                name=file.name,
                mimetype=file.mimetype,
                filetype=file.filetype,
                pretty_type=file.pretty_type,
                size=file.size,
                url=file.url,
                needs_info=file.needs_info,
                kind=file.kind.value,
                state=state,
            )
        )
    return rows


def slack_file(row: FileRow) -> SlackFile:
    """The stored file as Slack described it."""
    return SlackFile(
        id=row.slack_file_id, name=row.name, mimetype=row.mimetype, filetype=row.filetype,
        pretty_type=row.pretty_type, size=row.size, url=row.url, needs_info=row.needs_info,
    )  # fmt: skip


class _ImageCache:
    """Prepared images by (team, file id), the least recently used dropped past `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._items: OrderedDict[tuple[str, str], PreparedImage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> PreparedImage | None:
        with self._lock:
            image = self._items.get(key)
            if image is not None:
                self._items.move_to_end(key)
            return image

    def put(self, key: tuple[str, str], image: PreparedImage) -> None:
        if len(image.data) > self._max:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._bytes -= len(old.data) if old else 0
            self._items[key] = image
            self._bytes += len(image.data)
            while self._bytes > self._max:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.data)

    def drop(self, key: tuple[str, str]) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            self._bytes -= len(old.data) if old else 0


class FileService:
    """Reads the files people share, stores what was read, and fetches images again."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        downloader: FileDownloader,
        *,
        describe: Describe | None = None,
        concurrency: int = 2,
        cache_bytes: int = 32_000_000,
    ) -> None:
        self._sessions = sessions
        self._downloader = downloader
        self._describe = describe
        self._slots = threading.BoundedSemaphore(concurrency)
        self._images = _ImageCache(cache_bytes)

    def shared(self, conversation_id: int, *, upto: int, upto_ts: str | None) -> list[FileRow]:
        """The files of the thread's messages up to message `upto` (Slack ts `upto_ts`)."""
        with self._sessions() as session:
            return file_queries.conversation_files(
                session, conversation_id, upto=upto, upto_ts=upto_ts
            )

    def read_pending(self, rows: list[FileRow]) -> list[FileRow]:
        """Download and read those of `rows` not read yet; the rows as they are now."""
        pending = [row for row in rows if row.state == "pending"][-MAX_FILES_PER_TURN:]
        if not pending:
            return rows
        for row in pending:
            self._read(row)
        with self._sessions() as session:
            return file_queries.message_files(session, sorted({r.message_id for r in rows}))

    def _read(self, row: FileRow) -> None:
        file = slack_file(row)
        try:
            if file.needs_info:
                file = self._described(row, file)
            with self._slots:
                extracted = self._extract(row.team_id, file)
        except FileProblem as problem:
            log.info("file %s not readable: %s", row.slack_file_id, problem.detail)
            self._store(row, state="unreadable", note=problem.reason)
            return
        except Exception as exc:
            # A library failing on hostile input must not cost the turn its answer; a file is
            # input people send, so no traceback: the error's type and words say enough.
            log.warning("reading file %s failed: %s: %s", row.slack_file_id,
                        type(exc).__name__, exc)  # fmt: skip
            self._store(row, state="unreadable", note="reading it failed on my side")
            return
        image = extracted.image
        if image is not None:
            self._images.put((row.team_id, row.slack_file_id), image)
        self._store(
            row, state="read", text=extracted.text, note=extracted.note,
            size=image.size if image is not None else None, kind=extracted.kind.value,
        )  # fmt: skip

    def _extract(self, team_id: str, file: SlackFile) -> Extracted:
        if file.kind is FileKind.OTHER and file.known_binary:
            raise FileProblem(f"it is {file.described}")  # no need to download it to know
        downloaded = self._downloader.download(team_id, file)
        return extract(file, downloaded.data)

    def _described(self, row: FileRow, file: SlackFile) -> SlackFile:
        """The file as files.info describes it (events of Slack Connect give only its id)."""
        described = self._describe(row.team_id, row.slack_file_id) if self._describe else None
        if described is None:
            raise FileProblem("Slack would not describe it to me")
        with self._sessions.begin() as session:
            file_queries.set_described(
                session, row.id, name=described.name, mimetype=described.mimetype,
                filetype=described.filetype, pretty_type=described.pretty_type,
                size=described.size, url=described.url, kind=described.kind.value,
            )  # fmt: skip
        return described

    def _store(
        self,
        row: FileRow,
        *,
        state: str,
        text: str | None = None,
        note: str | None = None,
        size: tuple[int, int] | None = None,
        kind: str | None = None,
    ) -> None:
        with self._sessions.begin() as session:
            file_queries.set_read(
                session, row.id, state=state, text=text, note=note, size=size, kind=kind
            )

    def image(self, row: FileRow) -> PreparedImage | None:
        """A stored image as the model gets it: from the cache, or fetched again; None when
        it cannot be had any more (deleted in Slack, the link expired)."""
        key = (row.team_id, row.slack_file_id)
        cached = self._images.get(key)
        if cached is not None:
            return cached
        if row.url is None or row.state != "read":
            return None
        try:
            with self._slots:
                downloaded = self._downloader.download(row.team_id, slack_file(row))
                image = prepare_image(downloaded.data)
        except FileProblem as problem:
            log.info("image %s not fetched again: %s", row.slack_file_id, problem.detail)
            return None
        except Exception as exc:  # as in `_read`: the turn is answered without it
            log.warning("fetching image %s again failed: %s: %s", row.slack_file_id,
                        type(exc).__name__, exc)  # fmt: skip
            return None
        self._images.put(key, image)
        return image

    def close(self) -> None:
        """Close the download connections."""
        self._downloader.close()

    def forget(self, team_id: str, slack_file_id: str) -> int:
        """Slack says the file was deleted: drop what was read of it; how many rows held it."""
        self._images.drop((team_id, slack_file_id))
        with self._sessions.begin() as session:
            return file_queries.forget_file(session, team_id=team_id, slack_file_id=slack_file_id)
