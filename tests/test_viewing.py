"""The desk's image viewer: clean copies made by a confined child, from real Pillow images."""

from __future__ import annotations

import io
import os
import random
import struct
import sys
import zlib

import pytest
from PIL import Image, ImageChops, ImageCms, ImageStat, PngImagePlugin

from portal.desk import viewing
from portal.desk.viewing import Sanitised, UnsafeImage, held_back, location_of, sanitise

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CAMERA = "SecretCam X1 serial 0042"


def picture(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A smooth colour picture (JPEG keeps it close)."""
    across = Image.linear_gradient("L").resize(size)
    down = Image.linear_gradient("L").rotate(90).resize(size)
    return Image.merge("RGB", (across, down, Image.new("L", size, 128)))


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0110] = CAMERA  # Model
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.5)  # GPSLatitudeRef, GPSLatitude
    gps[3], gps[4] = "E", (2.0, 17.0, 40.2)  # GPSLongitudeRef, GPSLongitude
    return exif


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def chunk_kinds(png: bytes) -> list[bytes]:
    assert png.startswith(PNG_SIGNATURE)
    kinds, at = [], len(PNG_SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kinds.append(png[at + 4 : at + 8])
        at += 12 + length
    return kinds


def png_declaring(width: int, height: int) -> bytes:
    """A few hundred bytes claiming to be an RGB picture of ``width`` x ``height``."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * (1 + 3 * width))
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def opened(s: Sanitised) -> Image.Image:
    im = Image.open(io.BytesIO(s.data))
    im.load()
    return im


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / len(a.getbands())


def test_a_photo_comes_back_without_its_metadata_but_says_it_had_a_location() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Model="SecretCam"/></x:xmpmeta>'
    )
    original = encode(
        picture(),
        "JPEG",
        quality=95,
        exif=gps_exif(),
        xmp=xmp,
        comment="taken by the reporter's phone",
        icc_profile=icc,
    )
    assert b"Exif" in original and CAMERA.encode() in original

    s = sanitise(original)

    assert (s.mimetype, s.width, s.height, s.location) == ("image/jpeg", 96, 64, True)
    assert s.data != original
    for trace in (b"Exif", CAMERA.encode(), b"SecretCam", b"xmpmeta", b"reporter", b"ICC_PROFILE"):
        assert trace not in s.data
    clean = opened(s)
    assert clean.format == "JPEG" and clean.size == (96, 64) and clean.mode == "RGB"
    assert len(clean.getexif()) == 0
    assert not {"exif", "xmp", "comment", "icc_profile"} & set(clean.info)
    assert mean_difference(clean, Image.open(io.BytesIO(original)).convert("RGB")) < 3
    assert location_of(original) is True


def test_a_photo_without_gps_has_no_location() -> None:
    exif = Image.Exif()
    exif[0x0110] = CAMERA
    original = encode(picture(), "JPEG", exif=exif)

    s = sanitise(original)

    assert s.location is False and CAMERA.encode() not in s.data
    assert location_of(original) is False
    assert location_of(encode(picture(), "PNG")) is False


def png_with_text(key: str, text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text(key, text)
    return encode(picture(), "PNG", pnginfo=info)


def png_with_text_after_the_pixels(key: bytes, text: bytes) -> bytes:
    png = encode(picture((8, 8)), "PNG")
    assert png.endswith(chunk(b"IEND", b""))
    return png[:-12] + chunk(b"tEXt", key + b"\0" + text) + png[-12:]


@pytest.mark.parametrize(
    "original",
    [
        encode(
            picture(),
            "JPEG",
            xmp=b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
            b'exif:GPSLatitude="48,51.49N" exif:GPSLongitude="2,17.67E"/>',
        ),
        png_with_text("GPSLatitude", "48.8582"),
        png_with_text_after_the_pixels(b"Comment", b"GPS Latitude 48.8582, Longitude 2.2945"),
        encode(picture(), "WEBP", exif=gps_exif().tobytes(), lossless=True),
        encode(picture(), "PNG", exif=gps_exif()),
    ],
    ids=["jpeg-xmp", "png-text", "png-text-after-pixels", "webp-exif", "png-exif"],
)
def test_location_is_noticed_wherever_it_is_kept(original: bytes) -> None:
    assert location_of(original) is True
    assert sanitise(original).location is True


def test_png_text_chunks_are_dropped_and_pixels_kept_exactly() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "secret-author-name")
    info.add_text("Comment", "secret-compressed-note " * 20, zip=True)
    info.add_itxt("Description", "secret-international-text", lang="en", tkey="Description")
    im = picture()
    original = encode(im, "PNG", pnginfo=info)
    assert b"secret-author-name" in original

    s = sanitise(original)

    assert (s.mimetype, s.width, s.height, s.location) == ("image/png", 96, 64, False)
    assert b"secret" not in s.data
    assert set(chunk_kinds(s.data)) == {b"IHDR", b"IDAT", b"IEND"}
    clean = opened(s)
    assert isinstance(clean, PngImagePlugin.PngImageFile)
    assert clean.text == {} and len(clean.getexif()) == 0
    assert clean.tobytes() == im.tobytes()


def test_the_picture_is_turned_upright_by_its_exif_orientation() -> None:
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (20, 0, 40, 20))  # red on the left, blue on the right, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90° clockwise to show
    original = encode(im, "JPEG", exif=exif, quality=95)

    s = sanitise(original)

    assert (s.width, s.height) == (20, 40)
    clean = opened(s)
    assert clean.size == (20, 40) and len(clean.getexif()) == 0
    top, bottom = clean.getpixel((10, 8)), clean.getpixel((10, 31))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60  # the left edge is now the top: red
    assert bottom[2] > 200 and bottom[0] < 60


def test_a_decompression_bomb_is_refused() -> None:
    bomb = png_declaring(20_000, 20_000)  # 400 megapixels in a few hundred bytes
    assert len(bomb) < 1000
    with pytest.raises(UnsafeImage, match=viewing.TOO_LARGE):
        sanitise(bomb)


def test_just_over_the_pixel_limit_is_refused_where_pillow_would_only_warn() -> None:
    big = encode(Image.new("1", (10_000, 7_000)), "PNG")  # 70 megapixels, 9 KB
    assert viewing.MAX_PIXELS < 70_000_000 < 2 * viewing.MAX_PIXELS
    for look in (sanitise, location_of):
        with pytest.raises(UnsafeImage, match=viewing.TOO_LARGE) as refused:
            look(big)
        assert refused.value.reason == "unsafe_image"


SECRET_TEXT = b"the reporter's secret words " * 40


@pytest.mark.parametrize(
    "data",
    [
        b"",
        random.Random(7).randbytes(4096),
        SECRET_TEXT,
        encode(picture(), "JPEG")[:400],  # truncated
        encode(picture(), "PNG")[:-40],  # truncated
        encode(picture(), "BMP"),  # Pillow reads it; the desk does not
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    ],
    ids=["empty", "random", "text", "truncated-jpeg", "truncated-png", "bmp", "svg"],
)
def test_what_is_not_a_readable_image_is_refused_without_repeating_it(data: bytes) -> None:
    for look in (sanitise, location_of):
        with pytest.raises(UnsafeImage) as refused:
            look(data)
        if look is sanitise or not data.startswith(b"\xff\xd8"):
            # (a truncated JPEG's metadata can still be read: only sanitise must refuse it)
            assert refused.value.detail == viewing.UNREADABLE
        assert "secret" not in str(refused.value)


def test_a_truncated_jpeg_header_is_enough_to_read_its_location() -> None:
    original = encode(picture(), "JPEG", exif=gps_exif())
    cut = original[: original.index(b"\xff\xda") + 40]  # 40 bytes into the compressed pixels
    assert location_of(cut) is True
    with pytest.raises(UnsafeImage, match=viewing.UNREADABLE):
        sanitise(cut)


def test_an_animation_comes_back_as_its_first_frame() -> None:
    frames = [Image.new("RGB", (30, 20), colour) for colour in ("red", "lime", "blue")]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert getattr(Image.open(io.BytesIO(gif)), "n_frames", 1) == 3

    s = sanitise(gif)

    assert (s.mimetype, s.width, s.height) == ("image/png", 30, 20)
    clean = opened(s)
    assert clean.format == "PNG" and getattr(clean, "n_frames", 1) == 1
    assert clean.getpixel((15, 10)) == (255, 0, 0)


def test_webp_transparency_survives_as_png() -> None:
    im = Image.new("RGBA", (16, 16), (0, 128, 255, 255))
    im.paste((255, 255, 255, 0), (0, 0, 8, 16))
    s = sanitise(encode(im, "WEBP", lossless=True))

    assert s.mimetype == "image/png"
    clean = opened(s)
    assert clean.mode == "RGBA" and clean.getpixel((12, 8)) == (0, 128, 255, 255)
    pixel = clean.getpixel((2, 8))
    assert isinstance(pixel, tuple) and pixel[3] == 0


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    s = sanitise(encode(Image.new("I;16", (8, 8), 40_000), "PNG"))
    assert opened(s).getpixel((4, 4)) == (156, 156, 156)  # 40000 / 256


def test_the_child_is_a_fresh_confined_process_without_the_desk_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORTAL_DESK_PASSPHRASE", "correct horse battery staple")

    child, _ = viewing._ask("limits", b"", timeout=10)

    assert child["pid"] != os.getpid()
    assert child["isolated"] is True
    environment = child["environment"]
    assert isinstance(environment, list) and set(environment) <= {"LC_CTYPE"}
    assert child["limits"] == {name: [soft, hard] for name, soft, hard in viewing.CHILD_LIMITS}
    assert child["dumpable"] == 0 and child["no_new_privs"] == 1
    assert child["max_pixels"] == viewing.MAX_PIXELS


def test_a_child_that_takes_too_long_is_stopped() -> None:
    with pytest.raises(UnsafeImage, match=viewing.TOO_SLOW):
        sanitise(encode(picture(), "PNG"), timeout=0.001)


def test_a_file_too_large_to_try_is_refused_before_any_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(viewing, "MAX_INPUT_BYTES", 100)
    monkeypatch.setattr(sys, "executable", "")  # a child would fail differently
    with pytest.raises(UnsafeImage, match=viewing.TOO_LARGE):
        sanitise(encode(picture(), "PNG"))


@pytest.mark.parametrize(
    ("mime", "held"),
    [
        ("image/jpeg", True),
        ("image/svg+xml", True),
        ("Video/MP4", True),
        ("audio/ogg; codecs=opus", True),
        ("application/pdf", False),
        ("text/plain", False),
        ("", False),
    ],
)
def test_pictures_films_and_sound_are_held_back(mime: str, held: bool) -> None:
    assert held_back(mime) is held


def test_only_raster_formats_the_child_decodes_are_sanitisable() -> None:
    assert frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"}) == viewing.SANITISABLE
    assert all(held_back(mime) for mime in viewing.SANITISABLE)
    assert "image/svg+xml" not in viewing.SANITISABLE
