"""Small real files for tests and benches: PDFs written byte by byte, images made with Pillow."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[str], *, compress: bool = True) -> bytes:
    """A valid PDF of `pages`, each page's text set in Helvetica, one line per text line."""
    objects: list[bytes] = []
    font_id = 3
    page_ids = []
    contents = []
    for number, text in enumerate(pages):
        lines = text.splitlines() or [""]
        ops = ["BT", "/F1 11 Tf", "14 TL", "50 780 Td"]
        ops += [f"({_escape(line)}) Tj T*" for line in lines]
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1", "replace")
        page_ids.append(4 + 2 * number)
        contents.append(stream)
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for page_id, stream in zip(page_ids, contents, strict=True):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents {page_id + 1} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        if compress:
            data = zlib.compress(stream)
            head = f"<< /Length {len(data)} /Filter /FlateDecode >>".encode()
        else:
            data = stream
            head = f"<< /Length {len(data)} >>".encode()
        objects.append(head + b"\nstream\n" + data + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def make_encrypted_pdf(pages: list[str], password: str = "secret") -> bytes:
    """The PDF of `pages`, encrypted (AES-128) so that it opens only with `password`."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(pages))))
    writer.encrypt(user_password=password, owner_password=password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_image(
    width: int, height: int, *, format: str = "PNG", color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    """An image of `width` x `height` in `format` (PNG, JPEG, GIF, WEBP): a gradient on `color`."""
    image = Image.new("RGB", (width, height), color)
    # A diagonal band, so encoders have something to encode and a downscale can be checked.
    band = Image.linear_gradient("L").resize((width, height))
    image.paste((20, 120, 220), mask=band)
    out = io.BytesIO()
    image.save(out, format=format, quality=90) if format == "JPEG" else image.save(out, format)
    return out.getvalue()


def make_photo(width: int, height: int) -> bytes:
    """A JPEG about as large as a phone photo: a gradient with grain (bench)."""
    base = Image.open(io.BytesIO(make_image(width, height))).convert("RGB")
    grain = Image.merge("RGB", [Image.effect_noise((width, height), 24)] * 3)
    out = io.BytesIO()
    Image.blend(base, grain, 0.25).save(out, "JPEG", quality=92)
    return out.getvalue()


def make_noisy_jpeg(width: int, height: int) -> bytes:
    """A JPEG of random noise: as hard to encode as a photo (bench)."""
    import os

    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )
