"""The text of a PDF, with pypdfium2 (PDFium, the PDF engine of Chrome).

Chosen by `bench/files.py` (a 50-page PDF of text, median of 7 fresh processes, 2026-12-08,
2-core machine under load 8-10): pypdfium2 309-365 ms and +9 MB of RSS, pypdf 634-849 ms and
+20-23 MB, pdfminer.six 4.6-7.5 s and +22-24 MB, all three finding the same 172,300
characters. pypdfium2 is BSD-3/Apache-2.0 (PDFium: BSD-3) with binary wheels for Linux
(glibc and musl), macOS and Windows on x86-64 and ARM; pypdf (BSD-3) and pdfminer.six (MIT)
are pure Python (any platform), and slower by 2-2.5 and 15-24 times here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pypdfium2

from bot.files.problems import FileProblem

MAX_PAGES = 500
# PDFium is not thread-safe (pypdfium2's docs): one document at a time per process, which
# also bounds the memory extraction takes with several turns at once.
_PDFIUM = threading.Lock()


@dataclass(frozen=True)
class PdfText:
    """What a PDF says: its text, and how much of it was read."""

    text: str
    pages: int
    pages_read: int
    truncated: bool  # stopped at `max_chars` or MAX_PAGES


def pdf_text(data: bytes, *, max_chars: int) -> PdfText:
    """The text of the PDF `data`, page after page, up to `max_chars` characters.

    Raises `FileProblem` for an encrypted, corrupt or empty document.
    """
    if not data.lstrip()[:1024].startswith(b"%PDF") and b"%PDF" not in data[:1024]:
        raise FileProblem("it is not a PDF, though it is named like one")
    parts: list[str] = []
    length = 0
    with _PDFIUM:
        try:
            document = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as exc:
            raise _problem(exc) from exc
        try:
            pages = len(document)
            read = 0
            for index in range(min(pages, MAX_PAGES)):
                if length >= max_chars:
                    break
                page = document[index]
                try:
                    textpage = page.get_textpage()
                    try:
                        text = textpage.get_text_bounded().replace("\r\n", "\n")
                    finally:
                        textpage.close()
                finally:
                    page.close()
                read += 1
                parts.append(text)
                length += len(text) + 2
        except pypdfium2.PdfiumError as exc:
            raise FileProblem("the PDF is damaged", detail=str(exc)) from exc
        finally:
            document.close()
    text = "\n\n".join(parts)
    truncated = len(text) > max_chars or read < pages
    return PdfText(text[:max_chars], pages, read, truncated)


def _problem(exc: pypdfium2.PdfiumError) -> FileProblem:
    said = str(exc)
    if "password" in said.lower() or "security" in said.lower():
        return FileProblem("the PDF is protected with a password", detail=said)
    return FileProblem("the PDF is damaged or incomplete", detail=said)
