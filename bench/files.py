"""Files people share: PDF text extraction by library, and downscaling a phone photo.

The parent writes the inputs to a scratch folder once; each measurement runs in a fresh
child process (`--child`) that reads its input and then works, so that its peak RSS
(`ru_maxrss`) is that work's alone; the parent prints medians over `--runs` children. The PDF is
`--pages` pages of about 45 lines of text each, written by `tests/filemakers.py`; the photo
is a 4000 x 3000 (12 MP) JPEG of noise, as hard to encode as a photograph.

    .venv/bin/python bench/files.py [--runs 7] [--pages 50]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIBRARIES = ("pypdfium2", "pypdf", "pdfminer.six")


def page_text(number: int) -> str:
    line = "Clause {n}.{k}: either party may end this agreement with three months' notice."
    return "\n".join(line.format(n=number, k=k) for k in range(45))


def extract(library: str, data: bytes) -> int:
    """Characters of text `library` finds in the PDF `data`."""
    if library == "pypdfium2":
        from bot.files.pdf import pdf_text

        return len(pdf_text(data, max_chars=10_000_000).text)
    if library == "pypdf":
        from pypdf import PdfReader

        return sum(len(page.extract_text()) for page in PdfReader(io.BytesIO(data)).pages)
    if library == "pdfminer.six":
        from pdfminer.high_level import extract_text

        return len(extract_text(io.BytesIO(data)))
    raise ValueError(library)


def child(what: str, source: Path) -> None:
    """One measurement; prints seconds, peak RSS in MB and the size of what it made."""
    data = source.read_bytes()
    if what in ("photo", "noise"):
        from bot.files.images import prepare_image

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        image = prepare_image(data)
        seconds = time.perf_counter() - started
        made = len(image.data)
        extra = {"in_bytes": len(data), "size": list(image.size)}
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        made = extract(what, data)
        seconds = time.perf_counter() - started
        extra = {"in_bytes": len(data)}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "grew_mb": (peak - before) / 1024,
                      "made": made, **extra}))  # fmt: skip


def make_inputs(scratch: Path, pages: int) -> None:
    """Write the PDF and the two photos the children read."""
    from tests.filemakers import make_noisy_jpeg, make_pdf, make_photo

    (scratch / "pdf").write_bytes(make_pdf([page_text(n) for n in range(pages)]))
    (scratch / "photo").write_bytes(make_photo(4000, 3000))
    (scratch / "noise").write_bytes(make_noisy_jpeg(4000, 3000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--make", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.source))
        return
    if args.make:
        make_inputs(Path(args.make), args.pages)
        return
    scratch = Path(tempfile.mkdtemp(prefix="bench-files-"))
    # Made in a child too: Linux keeps a process's peak RSS across fork and exec, so a parent
    # that made a 12 MP image would lend its peak to every child.
    subprocess.run(
        [sys.executable, __file__, "--make", str(scratch), "--pages", str(args.pages)], check=True
    )
    for what in (*LIBRARIES, "photo", "noise"):
        source = scratch / ("pdf" if what in LIBRARIES else what)
        runs = []
        for _ in range(args.runs):
            out = subprocess.run(
                [sys.executable, __file__, "--child", what, "--source", str(source)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            runs.append(json.loads(out.stdout))
        pdf = what in LIBRARIES
        label = f"{args.pages}-page PDF, {what}" if pdf else f"12 MP JPEG ({what}) downscale"
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        grew = statistics.median(r["grew_mb"] for r in runs)
        first = runs[0]
        made = (
            f"{first['made']:,} characters"
            if pdf
            else f"{first['in_bytes'] / 1e6:.1f} MB -> {first['made'] / 1e6:.2f} MB, "
            f"{first['size'][0]}x{first['size'][1]}"
        )
        print(
            f"{label:32} median {seconds * 1000:8.1f} ms  peak RSS {peak:6.1f} MB "
            f"(+{grew:5.1f} MB while working)  {made}"
        )
    for path in scratch.iterdir():
        path.unlink()
    scratch.rmdir()


if __name__ == "__main__":
    main()
