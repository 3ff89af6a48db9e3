"""Headless Firefox ESR (Debian's firefox-esr) over Marionette, in Tor Browser's levels.

Tor Browser is Firefox ESR, so this is the closest the suite gets to it:

- ``standard``: JavaScript on;
- ``safer``: Tor Browser's Safer prefs: no JIT (Ion, Baseline), no native RegExp,
  no asm.js, no WebAssembly, so libsodium runs its pure-JS build;
- ``safest``: JavaScript off.

Debian ships no geckodriver, so Mozilla's own client, ``marionette-driver``, talks
to the browser, and :class:`Firefox` wraps it in the part of Selenium's WebDriver
API the suite uses: a test body written for Chromium drives Firefox unchanged,
``WebDriverWait`` and ``expected_conditions`` included (they see Selenium's
exceptions, translated from Marionette's).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from selenium.common import exceptions as se
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.harness.live import free_port

with warnings.catch_warnings():  # mozinfo and mozrunner use deprecated modules on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from marionette_driver import errors as mn  # type: ignore[import-untyped]
    from marionette_driver.marionette import Marionette  # type: ignore[import-untyped]
    from marionette_driver.marionette import WebElement as MnElement

LEVELS = ("standard", "safer", "safest")
STARTUP_TIMEOUT = 60.0

Pref = bool | int | str

# Tor Browser's Safer level (its SecurityLevel prefs that touch scripts).
SAFER: dict[str, Pref] = {
    "javascript.options.ion": False,
    "javascript.options.baselinejit": False,
    "javascript.options.native_regexp": False,
    "javascript.options.asmjs": False,
    "javascript.options.wasm": False,
}
LEVEL_PREFS: dict[str, dict[str, Pref]] = {
    "standard": {},
    "safer": SAFER,
    "safest": {**SAFER, "javascript.enabled": False},  # Safest includes Safer
}

# A quiet, offline browser: no first-run or what's-new pages, and nothing that
# phones home (telemetry, updates, safe browsing, remote settings, captive portal
# and connectivity checks, prefetch and speculative connections, DoH, push).
_NOWHERE = "data:,#remote-settings-dummy/v1"  # what Mozilla's harnesses use
QUIET: dict[str, Pref] = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.startup.homepage_override.mstone": "ignore",
    "startup.homepage_welcome_url": "about:blank",
    "startup.homepage_welcome_url.additional": "",
    "browser.aboutwelcome.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.newtab.preload": False,
    "browser.newtabpage.activity-stream.feeds.topsites": False,
    "browser.newtabpage.activity-stream.feeds.section.topstories": False,
    "browser.newtabpage.activity-stream.telemetry": False,
    "browser.newtabpage.activity-stream.asrouter.userprefs.cfr.addons": False,
    "browser.newtabpage.activity-stream.asrouter.userprefs.cfr.features": False,
    "browser.topsites.contile.enabled": False,
    "browser.uitour.enabled": False,
    "browser.tabs.warnOnClose": False,
    "browser.warnOnQuit": False,
    "browser.sessionstore.resume_from_crash": False,
    "toolkit.startup.max_resumed_crashes": -1,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.policy.firstRunURL": "",
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.archive.enabled": False,
    "toolkit.telemetry.server": _NOWHERE,
    "toolkit.telemetry.newProfilePing.enabled": False,
    "toolkit.telemetry.shutdownPingSender.enabled": False,
    "toolkit.telemetry.firstShutdownPing.enabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "browser.ping-centre.telemetry": False,
    "app.normandy.enabled": False,
    "app.normandy.api_url": "",
    "app.shield.optoutstudies.enabled": False,
    "nimbus.rollouts.enabled": False,
    "app.update.disabledForTesting": True,
    "app.update.auto": False,
    "app.update.checkInstallTime": False,
    "extensions.update.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.blocklist.enabled": False,
    "extensions.pocket.enabled": False,
    "browser.discovery.enabled": False,
    "identity.fxaccounts.enabled": False,
    "browser.search.update": False,
    "browser.region.update.enabled": False,
    "browser.region.network.url": "",
    "geo.provider.network.url": "",
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.safebrowsing.provider.google4.gethashURL": "",
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.safebrowsing.provider.mozilla.gethashURL": "",
    "services.settings.server": _NOWHERE,
    "security.remote_settings.crlite_filters.enabled": False,
    "security.remote_settings.intermediates.enabled": False,
    "security.OCSP.enabled": 0,
    "network.captive-portal-service.enabled": False,
    "captivedetect.canonicalURL": "",
    "network.connectivity-service.enabled": False,
    "network.prefetch-next": False,
    "network.dns.disablePrefetch": True,
    "network.predictor.enabled": False,
    "network.predictor.enable-prefetch": False,
    "network.http.speculative-parallel-limit": 0,
    "browser.urlbar.speculativeConnect.enabled": False,
    "browser.places.speculativeConnect.enabled": False,
    "browser.urlbar.quicksuggest.enabled": False,
    "network.trr.mode": 5,
    "doh-rollout.disable-heuristics": True,
    "network.proxy.type": 0,
    "dom.push.connection.enabled": False,
    "media.gmp-manager.url": "",
    "media.gmp-provider.enabled": False,
    "media.gmp-gmpopenh264.enabled": False,
    "browser.translations.enabled": False,
    "browser.ml.enable": False,
    "pdfjs.disabled": True,  # PDFs download instead of opening in the viewer
}


def _download_prefs(folder: str) -> dict[str, Pref]:
    return {
        "browser.download.dir": folder,
        "browser.download.folderList": 2,
        "browser.download.useDownloadDir": True,
        "browser.download.start_downloads_in_tmp_dir": False,
        "browser.download.always_ask_before_handling_new_types": False,
        "browser.download.alwaysOpenPanel": False,
        "browser.download.manager.showWhenStarting": False,
        "browser.helperApps.neverAsk.saveToDisk": ",".join(
            (
                "application/octet-stream",
                "application/x-tar",
                "application/gzip",
                "application/zip",
                "application/pdf",
                "application/json",
                "text/plain",
                "text/csv",
            )
        ),
    }


def user_js(level: str, port: int, downloads: str | None = None) -> str:
    """The profile's ``user.js`` for a level: quiet prefs, the level's, Marionette's port."""
    prefs = {**QUIET, **LEVEL_PREFS[level], "marionette.port": port}
    if downloads:
        prefs.update(_download_prefs(downloads))
    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


# Marionette's errors as Selenium's, so callers (and WebDriverWait) catch what they expect.
_ERRORS: dict[type[Exception], type[se.WebDriverException]] = {
    mn.NoSuchElementException: se.NoSuchElementException,
    mn.StaleElementException: se.StaleElementReferenceException,
    mn.ElementNotInteractableException: se.ElementNotInteractableException,
    mn.ElementClickInterceptedException: se.ElementClickInterceptedException,
    mn.InvalidElementStateException: se.InvalidElementStateException,
    mn.InvalidSelectorException: se.InvalidSelectorException,
    mn.InvalidArgumentException: se.InvalidArgumentException,
    mn.NoSuchWindowException: se.NoSuchWindowException,
    mn.NoAlertPresentException: se.NoAlertPresentException,
    mn.UnexpectedAlertOpen: se.UnexpectedAlertPresentException,
    mn.ScriptTimeoutException: se.TimeoutException,
    mn.TimeoutException: se.TimeoutException,
    mn.JavascriptException: se.JavascriptException,
}
# What a script says when the document it ran in, or an element it was handed,
# was replaced under it (a form post navigating away): stale, so waits ride over it.
_REPLACED = ("can't access dead object", "document was unloaded")


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except mn.MarionetteException as exc:
        kind = _ERRORS.get(type(exc), se.WebDriverException)
        if kind is se.JavascriptException and any(s in exc.message.lower() for s in _REPLACED):
            kind = se.StaleElementReferenceException
        raise kind(exc.message, stacktrace=[exc.stacktrace] if exc.stacktrace else None) from exc


class Element:
    """A DOM element, with the calls of Selenium's ``WebElement`` the suite makes."""

    def __init__(self, el: Any) -> None:
        self._el = el

    @property
    def id(self) -> str:
        return str(self._el.id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Element) and self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<firefox.Element {self.id}>"

    def find_element(self, by: str, value: str) -> Element:
        return Element(_call(self._el.find_element, by, value))

    def find_elements(self, by: str, value: str) -> list[Element]:
        return [Element(e) for e in _call(self._el.find_elements, by, value)]

    def click(self) -> None:
        _call(self._el.click)

    def send_keys(self, *value: str) -> None:
        _call(self._el.send_keys, "".join(value))

    def clear(self) -> None:
        _call(self._el.clear)

    @property
    def text(self) -> str:
        return str(_call(lambda: self._el.text))

    @property
    def tag_name(self) -> str:
        return str(_call(lambda: self._el.tag_name))

    def get_property(self, name: str) -> Any:
        return _unwrap(_call(self._el.get_property, name))

    def get_dom_attribute(self, name: str) -> str | None:
        return cast(str | None, _call(self._el.get_attribute, name))

    def get_attribute(self, name: str) -> str | None:
        """Selenium's mix: the property when it is a plain value, else the attribute;
        a boolean attribute gives "true" or None."""
        prop_name = {"class": "className", "readonly": "readOnly"}.get(name, name)
        if name.lower() in _BOOLEAN_ATTRIBUTES:
            present = self.get_dom_attribute(name) is not None
            return "true" if present or self.get_property(prop_name) else None
        prop = self.get_property(prop_name)
        if isinstance(prop, bool):
            return "true" if prop else "false"
        if isinstance(prop, (str, int, float)):
            return str(prop)
        return self.get_dom_attribute(name)

    def is_displayed(self) -> bool:
        return bool(_call(self._el.is_displayed))

    def is_enabled(self) -> bool:
        return bool(_call(self._el.is_enabled))

    def is_selected(self) -> bool:
        return bool(_call(self._el.is_selected))

    @property
    def rect(self) -> dict[str, float]:
        return cast(dict[str, float], _call(lambda: self._el.rect))

    @property
    def location(self) -> dict[str, int]:
        r = self.rect
        return {"x": round(r["x"]), "y": round(r["y"])}

    @property
    def size(self) -> dict[str, float]:
        r = self.rect
        return {"height": r["height"], "width": r["width"]}


# The attributes Selenium's getAttribute atom answers "true" or None for.
_BOOLEAN_ATTRIBUTES = frozenset(
    "async autofocus autoplay checked compact complete controls declare defaultchecked "  # noqa: SIM905
    "defaultselected defer disabled draggable ended formnovalidate hidden indeterminate "
    "iscontenteditable ismap itemscope loop multiple muted nohref noresize noshade "
    "novalidate nowrap open paused pubdate readonly required reversed scoped seamless "
    "seeking selected truespeed willvalidate".split()
)


def _wrap(value: Any) -> Any:
    """Arguments for a script: our elements become Marionette's."""
    if isinstance(value, Element):
        return value._el
    if isinstance(value, (list, tuple)):
        return [_wrap(v) for v in value]
    if isinstance(value, dict):
        return {k: _wrap(v) for k, v in value.items()}
    return value


def _unwrap(value: Any) -> Any:
    """A script's result: Marionette's elements become ours."""
    if isinstance(value, MnElement):
        return Element(value)
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


class _SwitchTo:
    def __init__(self, m: Any) -> None:
        self._m = m

    @property
    def active_element(self) -> Element:
        return Element(_call(self._m.get_active_element))

    def new_window(self, kind: str = "tab") -> None:
        """Open a tab (or window) and work in it, as Selenium's does."""
        opened = _call(self._m.open, type=kind, focus=True)
        _call(self._m.switch_to_window, opened["handle"])

    def window(self, handle: str) -> None:
        _call(self._m.switch_to_window, handle)


class Firefox:
    """The calls of Selenium's ``WebDriver`` the suite makes, over Marionette."""

    def __init__(self, m: Any, level: str, on_quit: Callable[[], None]) -> None:
        self._m = m
        self.level = level
        self._on_quit = on_quit
        self.switch_to = _SwitchTo(m)

    def get(self, url: str) -> None:
        _call(self._m.navigate, url)

    def find_element(self, by: str, value: str) -> Element:
        return Element(_call(self._m.find_element, by, value))

    def find_elements(self, by: str, value: str) -> list[Element]:
        return [Element(e) for e in _call(self._m.find_elements, by, value)]

    def execute_script(self, script: str, *args: Any) -> Any:
        # sandbox=None runs the script in the page's own global, as WebDriver does
        # (Marionette's default is a sandbox that sees the page through Xrays).
        return _unwrap(_call(self._m.execute_script, script, script_args=_wrap(args), sandbox=None))

    def execute_async_script(self, script: str, *args: Any) -> Any:
        # As in Selenium, the callback is the last of ``arguments``.
        return _unwrap(
            _call(self._m.execute_async_script, script, script_args=_wrap(args), sandbox=None)
        )

    @property
    def page_source(self) -> str:
        return str(_call(lambda: self._m.page_source))

    @property
    def title(self) -> str:
        return str(_call(lambda: self._m.title))

    @property
    def current_url(self) -> str:
        return str(_call(self._m.get_url))

    @property
    def current_window_handle(self) -> str:
        return str(_call(lambda: self._m.current_window_handle))

    @property
    def window_handles(self) -> list[str]:
        return [str(h) for h in _call(lambda: self._m.window_handles)]

    def close(self) -> None:
        """Close the current tab (switch to another before the next call)."""
        _call(self._m.close)

    def back(self) -> None:
        _call(self._m.go_back)

    def forward(self) -> None:
        _call(self._m.go_forward)

    def refresh(self) -> None:
        _call(self._m.refresh)

    def get_cookies(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], _call(self._m.get_cookies))

    def delete_cookie(self, name: str) -> None:
        _call(self._m.delete_cookie, name)

    def set_window_size(self, width: int, height: int) -> None:
        _call(self._m.set_window_rect, width=width, height=height)

    def get_window_size(self) -> dict[str, int]:
        r = _call(lambda: self._m.window_rect)
        return {"width": int(r["width"]), "height": int(r["height"])}

    def set_page_load_timeout(self, seconds: float) -> None:
        self._m.timeout.page_load = seconds

    def set_script_timeout(self, seconds: float) -> None:
        self._m.timeout.script = seconds

    def quit(self) -> None:
        """End the session and shut Firefox down (again: a no-op)."""
        self._on_quit()


AnyDriver = WebDriver | Firefox  # what a test body written for both browsers is handed


def wait(drv: AnyDriver, seconds: float) -> WebDriverWait[Any]:
    """``browsers.wait`` for either browser: rides over pages replaced under it."""
    return WebDriverWait(
        cast(Any, drv),
        seconds,
        ignored_exceptions=(se.StaleElementReferenceException, se.NoSuchElementException),
    )


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log: Path, seconds: float) -> None:
    end = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)  # a port has no event to wait on; poll it
    said = log.read_text(errors="replace")[-4000:].strip() or "(nothing)"
    code = proc.poll()
    state = "is still running" if code is None else f"exited with {code}"
    raise RuntimeError(
        f"Firefox's Marionette did not listen on 127.0.0.1:{port} within {seconds:g}s "
        f"(firefox-esr {state}); it said:\n{said}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the content processes too
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# What a copy of the template profile leaves behind: the prefs Firefox wrote at its
# quit (each start's user.js sets them afresh), its session, cache and locks.
_NOT_COPIED = shutil.ignore_patterns(
    "prefs.js", "user.js", "sessionstore*", "sessionCheckpoints.json", "cache2", "lock",
    ".parentlock", "crashes", "minidumps", "datareporting",
)  # fmt: skip
_template: Path | None = None


def _launch(
    profile: Path, level: str, width: int, height: int, downloads: str | None
) -> tuple[subprocess.Popen[bytes], Any]:
    """Firefox started headless on ``profile`` at ``level``, and a Marionette
    session on it (the process is the caller's to stop, also when this raises)."""
    binary = shutil.which("firefox-esr") or "/usr/bin/firefox-esr"
    port = free_port()
    (profile / "user.js").write_text(user_js(level, port, downloads), encoding="utf-8")
    tmp, log_path = profile.parent / "tmp", profile.parent / "firefox.log"
    tmp.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "TMPDIR": str(tmp),  # what Firefox keeps in temp goes with the profile
        "MOZ_HEADLESS_WIDTH": str(width),
        "MOZ_HEADLESS_HEIGHT": str(height),
        "MOZ_CRASHREPORTER_DISABLE": "1",
        # Refuse any connection off loopback (and honour the remote settings override).
        "MOZ_DISABLE_NONLOCAL_CONNECTIONS": "1",
    }
    args = [binary, "--headless", "--marionette", "--no-remote", "--profile", str(profile)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        _wait_for_port(proc, port, log_path, STARTUP_TIMEOUT)
        m = Marionette(host="127.0.0.1", port=port)
        m.start_session(timeout=STARTUP_TIMEOUT)
    except BaseException:
        _stop(proc)
        raise
    return proc, m


def _template_profile() -> Path:
    """A profile Firefox has once started in, shown about:blank and quit from
    cleanly, made once per test process and removed at its exit. A first start
    in an empty profile builds its databases, add-on registry and startup cache:
    copying them halves what each browser costs to start (4.9 s of CPU against
    2.4 s, measured here). It never saw a page of the portal; the copies leave
    out its prefs, session and cache."""
    global _template
    if _template is None:
        home = Path(tempfile.mkdtemp(prefix="firefox-template-"))
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        profile = home / "profile"
        profile.mkdir()
        proc, m = _launch(profile, "standard", 1000, 900, None)
        try:
            m.navigate("about:blank")
            # A clean quit writes the startup cache (a killed browser leaves it unwritten).
            m._request_in_app_shutdown()
            proc.wait(timeout=STARTUP_TIMEOUT)
        finally:
            _stop(proc)
        _template = profile
    return _template


@contextmanager
def firefox(
    mode: str,
    *,
    width: int = 1000,
    height: int = 900,
    downloads: str | None = None,
) -> Iterator[Firefox]:
    """A fresh headless Firefox ESR at Tor Browser level ``mode``, on a copy of
    the template profile (see ``_template_profile``); shut down and its profile
    removed afterwards."""
    if mode not in LEVELS:
        raise ValueError(f"unknown Tor Browser level {mode!r}; one of {LEVELS}")
    template = _template_profile()
    home = Path(tempfile.mkdtemp(prefix="firefox-"))
    profile = home / "profile"
    shutil.copytree(template, profile, ignore=_NOT_COPIED)
    proc: subprocess.Popen[bytes] | None = None
    m: Any = None
    closed = False

    def shut_down() -> None:
        nonlocal closed
        if closed:
            return
        closed = True
        try:
            if m is not None:
                m.cleanup()  # ends the session if there is one; never raises for a dead peer
        finally:
            if proc is not None:
                _stop(proc)

    try:
        proc, m = _launch(profile, mode, width, height, downloads)
        m.timeout.page_load = 60
        m.set_window_rect(width=width, height=height)
        yield Firefox(m, mode, shut_down)
    finally:
        try:
            shut_down()
        finally:
            shutil.rmtree(home, ignore_errors=True)
