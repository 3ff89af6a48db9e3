"""The organization's branding folder: its words shown, any script removed."""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from portal.server.app import create_app
from portal.server.branding import BrandingError, load_branding, sanitise
from portal.server.config import Config

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    '<a href="jav&#x09;ascript:alert(1)">tab</a>',
    '<a href="data:text/html,<script>alert(1)</script>">data</a>',
    "<svg onload=alert(1)><circle r=1></svg>",
    '<iframe src="https://evil.example/"></iframe>',
    "<style>body{display:none}</style>",
    '<p style="background:url(https://evil.example/t.png)">styled</p>',
    '<a href="https://ok.example/" onclick="alert(1)" target="_blank">ok</a>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<form action="https://evil.example/"><input name=code></form>',
    "<!--<script>alert(1)</script>-->",
    '<object data="x.swf"></object><embed src="x">',
    '<base href="https://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
]
DANGEROUS = re.compile(
    r"<(script|img|svg|iframe|style|form|input|object|embed|base|meta|math)\b"
    r"|\son\w+=|javascript:|data:text|style=|target=",
    re.IGNORECASE,
)


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_sanitiser_removes_every_way_to_run_or_load_something(payload: str) -> None:
    cleaned = str(sanitise(f"<p>Before</p>{payload}<p>After</p>"))
    assert not DANGEROUS.search(cleaned), cleaned
    assert "<p>Before</p>" in cleaned and "<p>After</p>" in cleaned


def test_sanitiser_keeps_the_small_allow_list() -> None:
    html = (
        "<h2>Who we are</h2><p>We are <strong>independent</strong> and <em>careful</em>.</p>"
        '<ul><li>One</li></ul><a href="https://example.org/about">About us</a>'
    )
    assert str(sanitise(html)) == html


def test_links_that_would_start_contact_outside_the_portal_are_removed() -> None:
    """The portal never asks anyone to make contact outside it: mail or phone
    links would leave traces in other apps."""
    cleaned = str(
        sanitise('<a href="mailto:help@example.org">Mail</a> <a href="tel:+100">Call</a>')
    )
    assert "mailto:" not in cleaned and "tel:" not in cleaned
    assert cleaned == "<a>Mail</a> <a>Call</a>"


def png(width: int = 1, height: int = 1) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x1f\x4f\x8a" * height)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture
def branding(tmp_path: Path) -> Path:
    folder = tmp_path / "branding"
    folder.mkdir()
    (folder / "branding.json").write_text(
        json.dumps(
            {
                "name": {"en": "Rights <Watch> & Co", "ar": "مرصد الحقوق"},
                "logo": "logo.png",
                "logo_alt": {"en": "Rights Watch logo", "ar": "شعار مرصد الحقوق"},
            }
        ),
        "utf-8",
    )
    (folder / "logo.png").write_bytes(png())
    payloads = "".join(XSS_PAYLOADS)
    (folder / "welcome.en.html").write_text(
        f"<p>We <strong>listen</strong>.</p>{payloads}", "utf-8"
    )
    (folder / "welcome.ar.html").write_text(f"<p>نحن <em>نصغي</em>.</p>{payloads}", "utf-8")
    (folder / "guidance.en.html").write_text(f"<p>Delete this tab.</p>{payloads}", "utf-8")
    return folder


@pytest.fixture
def branded(config: Config, branding: Path) -> FlaskClient:
    return create_app(replace(config, branding_dir=branding)).test_client()


def _organization_parts(html: str) -> str:
    """The parts of a page the branding folder fills."""
    parts = re.findall(r'<div class="organization-text"[^>]*>.*?</div>', html, re.DOTALL)
    header = re.search(r'<p class="org-name">.*?</p>', html, re.DOTALL)
    assert header
    return header.group(0) + "".join(parts)


def test_welcome_text_and_name_come_from_the_folder_cleaned(branded: FlaskClient) -> None:
    page = branded.get("/", headers={"Accept-Language": "en"}).text
    assert "<p>We <strong>listen</strong>.</p>" in page
    assert "Rights &lt;Watch&gt; &amp; Co" in page
    assert "<title>Welcome · Rights &lt;Watch&gt; &amp; Co</title>" in page
    shown = _organization_parts(page)
    assert not DANGEROUS.search(shown.replace('<img class="org-logo"', "")), shown


def test_each_language_gets_its_own_text(branded: FlaskClient) -> None:
    page = branded.get("/", headers={"Accept-Language": "ar"}).text
    assert '<div class="organization-text" lang="ar"><p>نحن <em>نصغي</em>.</p>' in page
    assert "مرصد الحقوق" in page and 'alt="شعار مرصد الحقوق"' in page


def test_a_missing_language_falls_back_to_english_marked_as_english(
    branded: FlaskClient,
) -> None:
    page = branded.get("/", headers={"Accept-Language": "fr"}).text
    assert '<div class="organization-text" lang="en"><p>We <strong>listen</strong>.</p>' in page
    assert re.search(r'<a href="/" lang="en">', page), "the English name must say it is English"


def test_guidance_is_on_the_staying_safe_page(branded: FlaskClient) -> None:
    page = branded.get("/safety", headers={"Accept-Language": "en"}).text
    assert '<div class="organization-text" lang="en"><p>Delete this tab.</p>' in page
    assert not DANGEROUS.search(_organization_parts(page).replace('<img class="org-logo"', ""))


def test_logo_is_served_from_a_hashed_address_with_its_type(branded: FlaskClient) -> None:
    page = branded.get("/").text
    match = re.search(r'<img class="org-logo" src="(/organization/logo/[0-9a-f]{16})"', page)
    assert match
    logo = branded.get(match.group(1))
    assert logo.status_code == 200
    assert logo.headers["Content-Type"] == "image/png"
    assert logo.headers["X-Content-Type-Options"] == "nosniff"
    assert logo.data == png()
    assert branded.get("/organization/logo/0000000000000000").status_code == 404


def test_svg_logo_is_refused(branding: Path) -> None:
    (branding / "logo.png").write_text('<svg onload="alert(1)"></svg>')
    with pytest.raises(BrandingError, match="PNG, JPEG or WebP"):
        load_branding(branding)


@pytest.mark.parametrize("name", ["../organization.json", "/etc/passwd", ".hidden"])
def test_logo_must_be_inside_the_folder(branding: Path, name: str) -> None:
    settings = json.loads((branding / "branding.json").read_text())
    (branding / "branding.json").write_text(json.dumps({**settings, "logo": name}))
    with pytest.raises(BrandingError, match="inside the branding folder"):
        load_branding(branding)


def test_portal_without_a_folder_uses_the_key_file_name(client: FlaskClient) -> None:
    page = client.get("/").text
    assert "Test Rights Network" in page
    assert 'class="organization-text"' not in page
    assert "org-logo" not in page


def test_the_documented_example_folder_loads() -> None:
    example = load_branding(Path(__file__).resolve().parent.parent / "docs" / "branding-example")
    assert example.name.get("ar") == ("شبكة الحقوق النموذجية", "ar")
    assert example.welcome.get("fr") is not None  # falls back to English
    assert example.guidance.get("ar") is not None
