"""Showing a reporter's picture on the desk without rendering the bytes they sent.

A file a reporter attached may be built to attack whatever decodes it, and the
desk holds the organization's private keys. So the desk never hands a
reporter's original image bytes to a browser or decodes them itself: it asks a
short-lived child process (a fresh interpreter, started with an empty
environment, so none of the desk's keys or passphrase are in its memory) to
decode the image with Pillow and encode a new one from the pixels alone.

The child accepts JPEG, PNG, GIF and WebP only (the first frame of an
animation), refuses more than ``MAX_PIXELS`` pixels rather than warning,
and runs under the resource limits of ``CHILD_LIMITS`` (address space, CPU
time, no file writes, few open files, no core dumps) with a wall-clock timeout
in the parent. The plaintext goes to it over stdin and the sanitised copy comes
back over stdout: neither touches the disk. The copy carries no EXIF, XMP,
ICC profile, comment or text chunk; it is turned upright first (EXIF
orientation), since the orientation tag goes with the rest.

The child's protocol: ``python -I -B -m portal.desk.viewing MODE`` reads the
file from stdin until EOF and writes one JSON line, then (for ``sanitise``)
exactly ``size`` bytes of the new image. Every failure the child can name is
``{"ok": false, "why": ...}``; a child that dies or overruns is judged by the
parent from its exit status.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from portal.common.errors import NamedError

if TYPE_CHECKING:
    from PIL import Image


class UnsafeImage(NamedError, ValueError):
    """An image the desk will not show: unreadable, too large, too slow, or it broke the viewer."""

    REASON = "unsafe_image"


# Types the child can make a clean copy of (the content decides, not the label).
SANITISABLE = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# Top-level types never shown or played until staff click for them.
HELD_BACK = ("image/", "video/", "audio/")

MAX_PIXELS = 64_000_000  # a larger picture is refused, not decoded
MAX_INPUT_BYTES = 128 * 1024 * 1024  # refused before a child is started
# (resource, soft, hard) set by the child on itself before it reads a byte of the file.
CHILD_LIMITS: tuple[tuple[str, int, int], ...] = (
    ("RLIMIT_AS", 1536 * 1024 * 1024, 1536 * 1024 * 1024),
    ("RLIMIT_CPU", 20, 21),  # SIGXCPU at 20 s of CPU, SIGKILL at 21 s
    ("RLIMIT_FSIZE", 0, 0),  # no file can be written
    ("RLIMIT_NOFILE", 16, 16),
    ("RLIMIT_CORE", 0, 0),  # no core dump holding the plaintext
)

UNREADABLE = "not a readable image"
TOO_LARGE = "too large to open safely"
TOO_SLOW = "took too long to open"
BROKE = "could not be opened safely"

_MODULE = "portal.desk.viewing"
_MODES = ("sanitise", "inspect", "limits")
_WHY = {"unreadable": UNREADABLE, "too_large": TOO_LARGE}
_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
_MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}
_GPS_IFD = 0x8825
# How XMP, comments and PNG text name a position: exif:GPSLatitude, GpsLongitude, GPS Position...
_GPS_WORDS = re.compile(r"gps.{0,3}(?:lat|lon|alt|pos|coord)|latitude|longitude", re.IGNORECASE)
# prctl(2) options
_PR_GET_DUMPABLE, _PR_SET_DUMPABLE = 3, 4
_PR_SET_NO_NEW_PRIVS, _PR_GET_NO_NEW_PRIVS = 38, 39


@dataclass(frozen=True)
class Sanitised:
    """A clean copy of an image: new bytes encoded from its pixels, and what the original held."""

    data: bytes
    mimetype: str  # image/jpeg for a JPEG, image/png for anything else
    width: int
    height: int
    location: bool  # the original carried GPS / location metadata


def held_back(mime: str) -> bool:
    """Whether a file of this type is kept out of the page until staff ask for it."""
    return mime.partition(";")[0].strip().lower().startswith(HELD_BACK)


def sanitise(data: bytes, timeout: float = 30.0) -> Sanitised:
    """A copy of the image ``data`` made from its pixels alone, by a confined child.

    Raises UnsafeImage, with a reason staff can read, for anything that is not
    a readable JPEG, PNG, GIF or WebP within the limits.
    """
    header, body = _ask("sanitise", data, timeout)
    mimetype, width, height = header.get("mimetype"), header.get("width"), header.get("height")
    location, size = header.get("location"), header.get("size")
    if not (
        isinstance(mimetype, str)
        and mimetype in _MAGIC
        and body.startswith(_MAGIC[mimetype])
        and type(size) is int
        and size == len(body)
        and type(width) is int
        and type(height) is int
        and 0 < width * height <= MAX_PIXELS
        and isinstance(location, bool)
    ):
        raise UnsafeImage(f"{BROKE} (the viewer answered out of turn)")
    return Sanitised(body, mimetype, width, height, location)


def location_of(data: bytes, timeout: float = 30.0) -> bool:
    """Whether the image ``data`` carries location metadata (EXIF GPS, XMP or text).

    The child reads only the metadata, without decoding pixels, except for a
    PNG, whose text may follow the pixels. Raises UnsafeImage as ``sanitise`` does.
    """
    header, _ = _ask("inspect", data, timeout)
    location = header.get("location")
    if not isinstance(location, bool):
        raise UnsafeImage(f"{BROKE} (the viewer answered out of turn)")
    return location


# --- the parent's side -------------------------------------------------------


# At most this many children at once: each may take CHILD_LIMITS' memory.
_CHILDREN = threading.BoundedSemaphore(2)


def _ask(mode: str, data: bytes, timeout: float) -> tuple[dict[str, object], bytes]:
    """Run the child in ``mode`` on ``data``: its JSON header and the bytes after it."""
    if mode != "limits":
        if not data:
            raise UnsafeImage(UNREADABLE)
        if len(data) > MAX_INPUT_BYTES:
            raise UnsafeImage(TOO_LARGE)
    if not sys.executable:
        raise RuntimeError("no Python interpreter to run the image viewer with")
    command = [sys.executable, "-I", "-B", "-m", _MODULE, mode]
    with (
        _CHILDREN,
        subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # nothing the decoder says reaches the desk's logs
            env={},  # no passphrase, no key paths, no PYTHON* settings
            cwd="/",
        ) as child,
    ):
        try:
            out, _ = child.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            raise UnsafeImage(TOO_SLOW) from None
        except BaseException:
            child.kill()
            raise
    status = child.returncode
    if status in (-signal.SIGXCPU, -signal.SIGKILL):
        raise UnsafeImage(TOO_SLOW)
    line, newline, body = out.partition(b"\n")
    if status != 0 or not newline:
        raise UnsafeImage(f"{BROKE} (the viewer stopped with status {status})")
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict):
        raise UnsafeImage(f"{BROKE} (the viewer answered out of turn)")
    if header.get("ok") is not True:
        why = header.get("why")
        raise UnsafeImage(_WHY.get(why, BROKE) if isinstance(why, str) else BROKE)
    return header, body


# --- the child's side --------------------------------------------------------


def _child_main(argv: list[str]) -> int:
    """The child: confine itself, read the file from stdin, answer on stdout."""
    if len(argv) != 1 or argv[0] not in _MODES:
        return 2
    mode = argv[0]
    _no_dumps_no_privileges()
    # Everything the work needs is imported before the limits (imports open files).
    import warnings

    from PIL import (
        GifImagePlugin,  # noqa: F401
        Image,
        ImageOps,  # noqa: F401
        JpegImagePlugin,  # noqa: F401
        MpoImagePlugin,  # noqa: F401
        PngImagePlugin,  # noqa: F401
        TiffImagePlugin,  # noqa: F401  (EXIF parsing)
        WebPImagePlugin,  # noqa: F401
    )

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)  # refuse, never just warn
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write fails instead of killing us
    _apply_limits()

    header: dict[str, object]
    body = b""
    if mode == "limits":
        header = _own_limits()
    else:
        try:
            source = _read_stdin()
            if source is None:
                header = {"ok": False, "why": "too_large"}
            elif mode == "inspect":
                header = _inspect(source)
            else:
                header, body = _sanitise(source)
        except (MemoryError, Image.DecompressionBombError, Image.DecompressionBombWarning):
            header, body = {"ok": False, "why": "too_large"}, b""
        except Exception:  # every other failure of a decoder on hostile bytes
            header, body = {"ok": False, "why": "unreadable"}, b""
    sys.stdout.buffer.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()
    return 0


def _prctl(option: int, value: int = 0) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(option, value, 0, 0, 0))


def _no_dumps_no_privileges() -> None:
    """No core dump or ptrace of this process, and no exec can gain privileges."""
    if sys.platform.startswith("linux"):
        _prctl(_PR_SET_DUMPABLE, 0)
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)


def _apply_limits() -> None:
    import resource

    for name, soft, hard in CHILD_LIMITS:
        which = getattr(resource, name)
        _, current = resource.getrlimit(which)
        if current != resource.RLIM_INFINITY:  # never ask to raise a hard limit
            soft, hard = min(soft, current), min(hard, current)
        resource.setrlimit(which, (soft, hard))


def _own_limits() -> dict[str, object]:
    """What the child runs under, for the tests: its limits, process, environment."""
    import resource

    from PIL import Image

    linux = sys.platform.startswith("linux")
    return {
        "ok": True,
        "pid": os.getpid(),
        "isolated": bool(sys.flags.isolated),
        "environment": sorted(os.environ),
        "limits": {
            name: list(resource.getrlimit(getattr(resource, name))) for name, _, _ in CHILD_LIMITS
        },
        "dumpable": _prctl(_PR_GET_DUMPABLE) if linux else None,
        "no_new_privs": _prctl(_PR_GET_NO_NEW_PRIVS) if linux else None,
        "max_pixels": Image.MAX_IMAGE_PIXELS,
    }


def _read_stdin() -> io.BytesIO | None:
    """The whole of stdin, or None when it is longer than MAX_INPUT_BYTES."""
    source = io.BytesIO()
    while chunk := os.read(0, 1 << 20):
        if source.tell() + len(chunk) > MAX_INPUT_BYTES:
            return None
        source.write(chunk)
    source.seek(0)
    return source


def _open(source: io.BytesIO) -> Image.Image:
    from PIL import Image

    im = Image.open(source, formats=_FORMATS)
    width, height = im.size
    if not 0 < width * height <= MAX_PIXELS:
        raise Image.DecompressionBombError("too many pixels")
    return im


def _inspect(source: io.BytesIO) -> dict[str, object]:
    with _open(source) as im:
        if im.format == "PNG":
            im.load()  # PNG text and eXIf chunks may come after the pixels
        return {"ok": True, "location": _carries_location(im)}


def _sanitise(source: io.BytesIO) -> tuple[dict[str, object], bytes]:
    with _open(source) as im:
        im.load()  # the first frame
        location = _carries_location(im)
        jpeg = im.format in ("JPEG", "MPO")
        _upright(im)
        fresh = _from_pixels(im, jpeg)
    out = io.BytesIO()
    if jpeg:
        fresh.save(out, "JPEG", quality=90)
    else:
        fresh.save(out, "PNG", compress_level=6)
    body = out.getvalue()
    header: dict[str, object] = {
        "ok": True,
        "mimetype": "image/jpeg" if jpeg else "image/png",
        "width": fresh.width,
        "height": fresh.height,
        "location": location,
        "size": len(body),
    }
    return header, body


def _upright(im: Image.Image) -> None:
    """Turn ``im`` as its EXIF orientation says; an unreadable orientation leaves it as stored."""
    from PIL import ImageOps

    try:
        ImageOps.exif_transpose(im, in_place=True)
    except MemoryError:
        raise
    except Exception:
        return


def _from_pixels(im: Image.Image, jpeg: bool) -> Image.Image:
    """A new RGB (or RGBA) image holding only ``im``'s pixels: no info, EXIF or profile."""
    from PIL import Image

    if im.mode.startswith("I"):  # 16-bit grey: scale to 8 bits (a plain convert clips)
        im = im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    target = "RGBA" if not jpeg and im.has_transparency_data else "RGB"
    pixels = im if im.mode == target else im.convert(target)
    fresh = Image.new(target, pixels.size)
    fresh.paste(pixels)
    return fresh


def _carries_location(im: Image.Image) -> bool:
    """EXIF GPS with any content, or a GPS position named in XMP, a comment or PNG text."""
    if _exif_gps(im):
        return True
    for key, value in im.info.items():
        if key in ("exif", "icc_profile"):
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        if isinstance(text, str) and (_GPS_WORDS.search(str(key)) or _GPS_WORDS.search(text)):
            return True
    return False


def _exif_gps(im: Image.Image) -> bool:
    """Whether the EXIF GPS IFD has any entry (False when the EXIF block is unreadable)."""
    try:
        return bool(im.getexif().get_ifd(_GPS_IFD))
    except MemoryError:
        raise
    except Exception:
        return False


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
