"""Images for the model: decoded with Pillow within bounds, made small, sent as data URLs.

A 12 MP phone photo is 3-6 MB as a JPEG, a third more in base64, in every request while its
message is in the context; at most MAX_SIDE pixels on its longest side it is a few hundred kB
(figures in `bench/files.py` and the README). Endpoints scale images down themselves too
(OpenAI to 2048 and then 768 on the short side), so the model loses nothing it would see.
"""

from __future__ import annotations

import base64
import io
import math
import struct
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.files.problems import FileProblem

MAX_SIDE = 2000
# Pillow refuses images over twice its MAX_IMAGE_PIXELS (about 179 MP by default) and only
# warns above it; here anything over MAX_PIXELS is refused before it is decoded: a PNG of a
# few kB can claim 50,000 x 50,000 pixels (7.5 GB decoded).
MAX_PIXELS = 50_000_000
# Pillow's own bomb warning (over its MAX_IMAGE_PIXELS) as an error, for every thread alike:
# `warnings.catch_warnings` is not thread-safe, and turns read images on many threads.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
JPEG_QUALITY = 85


@dataclass(frozen=True)
class PreparedImage:
    """An image as the model gets it: its bytes, their type, and its size in pixels."""

    data: bytes
    mimetype: str
    size: tuple[int, int]
    original_size: tuple[int, int]

    @property
    def data_url(self) -> str:
        """The image as a `data:` URL, for an `image_url` part."""
        return f"data:{self.mimetype};base64,{base64.b64encode(self.data).decode('ascii')}"


def image_tokens(width: int, height: int) -> int:
    """About what an image costs in prompt tokens: OpenAI's rule for detail "high" (fit in
    2048 x 2048, shortest side 768, 170 tokens per 512-pixel tile plus 85); other providers
    charge the same order of magnitude."""
    if width <= 0 or height <= 0:
        return 85
    scale = min(1.0, 2048 / max(width, height))
    scale *= min(1.0, 768 / (min(width, height) * scale))
    return 85 + 170 * math.ceil(width * scale / 512) * math.ceil(height * scale / 512)


def prepare_image(data: bytes) -> PreparedImage:
    """`data` as the model gets it: PNG, JPEG, GIF or WebP at most MAX_SIDE pixels a side.

    Raises `FileProblem` for bytes that are not such an image, a truncated or corrupt one,
    and one over MAX_PIXELS (a decompression bomb).
    """
    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except UnidentifiedImageError as exc:
        raise FileProblem("it is not an image I can read", detail=str(exc)) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FileProblem(_TOO_MANY_PIXELS, detail=str(exc)) from exc
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        raise FileProblem("the image is damaged or incomplete", detail=str(exc)) from exc
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise FileProblem(_TOO_MANY_PIXELS, detail=f"{width}x{height}")
        fmt = image.format or ""
        try:
            return _shrink(image, data, fmt)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise FileProblem(_TOO_MANY_PIXELS, detail=str(exc)) from exc
        except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
            # Truncated or corrupt data surfaces only when the pixels are decoded.
            raise FileProblem("the image is damaged or incomplete", detail=str(exc)) from exc


_TOO_MANY_PIXELS = (
    f"the image has too many pixels (over {MAX_PIXELS // 1_000_000} million) to open safely"
)


def _shrink(image: Image.Image, data: bytes, fmt: str) -> PreparedImage:
    """The image re-encoded at most MAX_SIDE a side; small images in a sent format as they are."""
    original = image.size
    if max(original) <= MAX_SIDE and fmt in FORMATS and not getattr(image, "is_animated", False):
        image.load()  # decodes it all: a truncated file fails here, not at the endpoint
        return PreparedImage(data, FORMATS[fmt], original, original)
    if fmt == "JPEG":
        # Decode at 1/2, 1/4 or 1/8 scale straight from the JPEG: a 12 MP photo then never
        # holds 36 MB of pixels (`bench/files.py`). Pillow picks the smallest scale that is
        # still at least the size asked on both sides: ask for the size it will be made.
        scale = MAX_SIDE / max(original)
        image.draft("RGB", (max(1, int(original[0] * scale)), max(1, int(original[1] * scale))))
    image.seek(0)  # an animated GIF or WebP: its first frame
    frame = ImageOps.exif_transpose(image)
    frame.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if frame.mode in ("RGBA", "LA", "P") and (frame.mode != "P" or "transparency" in frame.info):
        frame.save(out, "PNG", optimize=False)
        mimetype = "image/png"
    else:
        frame.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY)
        mimetype = "image/jpeg"
    return PreparedImage(out.getvalue(), mimetype, frame.size, original)
