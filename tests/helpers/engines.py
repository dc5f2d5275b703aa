"""One driver layer for the follower page in Chromium, Firefox and WebKit.

A test asks for an engine by name and gets pages with the few operations the page tests
need (goto, evaluate an expression to JSON, wait for a condition, click a selector, set the
viewport, screenshot, close); which engine runs stays hidden:

- **chromium**: Debian's Chromium through Playwright (tests/helpers/browser.py), one browser
  context per page, so each page has its own localStorage.
- **firefox**: Debian's ``firefox-esr --headless --marionette`` driven by Mozilla's
  ``marionette-driver``. Its scripts run in a sandbox, so they are evaluated against
  ``window.wrappedJSObject`` (the page's own globals).
- **webkit**: WebKitGTK's ``MiniBrowser --automation`` driven by ``WebKitWebDriver`` through
  Selenium 4, inside an Xvfb display started here (MiniBrowser needs a display, and the driver
  must be started with it: a display set after it starts is not seen).

Firefox and WebKit get a private PulseAudio daemon with a null sink when ``pulseaudio`` is
installed: without any audio output Firefox never lets an ``AudioContext`` leave "suspended",
and a phone always has an output. The Marionette and Selenium calls are blocking, so they run
in a worker thread: the server under test shares the test's event loop and must keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .browser import CHROMIUM, CHROMIUM_ARGS

ENGINES = ("chromium", "firefox", "webkit")

FIREFOX = "firefox-esr"
WEBKIT_DRIVER = "WebKitWebDriver"
#: Debian's libwebkit2gtk-4.1-0 installs MiniBrowser here (``dpkg -L libwebkit2gtk-4.1-0``).
MINIBROWSER_GLOBS = (
    "/usr/lib/*/webkit2gtk-4.1/MiniBrowser",
    "/usr/libexec/webkit2gtk-4.1/MiniBrowser",
)
STARTUP_TIMEOUT_S = 30.0
#: A page of the loopback server loads in well under a second; a load still going after this
#: is stuck (seen once in Firefox under load: Marionette's navigate never returned).
PAGE_LOAD_TIMEOUT_S = 30.0
#: How long closing a browser waits for its driver before stopping the process.
CLOSE_TIMEOUT_S = 5.0
#: A Firefox that answers no Marionette call in this long is wedged (its scripts time out in
#: 30 s and its loads in PAGE_LOAD_TIMEOUT_S, each with an answer). Seen twice on this VM, in
#: test_audio_map with the click on: a navigate (3 December) and an execute_script
#: (4 December) that never returned; Marionette's own 360 s held the test past its timeout and
#: its teardown for 4 minutes more.
DRIVER_CALL_TIMEOUT_S = 60.0


class BrowserWedged(RuntimeError):
    """The browser answered no driver call in ``DRIVER_CALL_TIMEOUT_S``. The pool starts a new
    one for the next page; the test suite runs a test that failed this way once more
    (``--only-rerun BrowserWedged``, pyproject.toml) and says so in its summary."""


#: Firefox preferences for a quiet, test-friendly profile. Port 0: Firefox picks a free port and
#: writes it to MarionetteActivePort in the profile, so parallel runs never collide on 2828.
FIREFOX_PREFS = {
    "marionette.port": 0,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "extensions.update.enabled": False,
    "browser.newtabpage.enabled": False,
}

#: The page's globals a Firefox script reaches through ``window.wrappedJSObject``.
PAGE_GLOBALS = ("bandsync", "document", "localStorage", "performance", "navigator")

T = TypeVar("T")


def _which(name: str) -> str | None:
    return shutil.which(name)


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else _which("chromium")


def minibrowser_path() -> str | None:
    for pattern in MINIBROWSER_GLOBS:
        found = sorted(Path("/").glob(pattern.lstrip("/")))
        if found:
            return str(found[0])
    return None


def missing_reason(engine: str) -> str | None:
    """Why ``engine`` cannot run on this machine, or None when everything it needs is there."""
    if engine == "chromium":
        if chromium_path() is None:
            return "Debian chromium is not installed (scripts/bootstrap dev installs it)"
        return None
    if engine == "firefox":
        if _which(FIREFOX) is None:
            return "firefox-esr is not installed (scripts/bootstrap dev installs it)"
        return None
    if engine == "webkit":
        for what, found in (
            ("WebKitWebDriver (webkit2gtk-driver)", _which(WEBKIT_DRIVER)),
            ("MiniBrowser (libwebkit2gtk-4.1-0)", minibrowser_path()),
            ("Xvfb (xvfb)", _which("Xvfb")),
        ):
            if found is None:
                return f"{what} is not installed (scripts/bootstrap dev installs it)"
        return None
    raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")


def has_audio_output(engine: str) -> bool:
    """Whether pages of ``engine`` get an audio output to run an AudioContext on."""
    return engine == "chromium" or _which("pulseaudio") is not None


def _wait_for(check: Callable[[], T | None], what: str, timeout: float = STARTUP_TIMEOUT_S) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not start within {timeout:.0f} s")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class Services:
    """Processes an engine needs besides the browser: an X display and an audio output."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.dirs: list[str] = []
        self.env: dict[str, str] = {}

    def tempdir(self, prefix: str) -> str:
        path = tempfile.mkdtemp(prefix=prefix)
        self.dirs.append(path)
        return path

    def start_xvfb(self) -> None:
        """An Xvfb on a free display number (``-displayfd`` tells which one it took)."""
        read, write = os.pipe()
        try:
            process = subprocess.Popen(
                [
                    "Xvfb",
                    "-displayfd",
                    str(write),
                    "-screen",
                    "0",
                    "1280x1024x24",
                    "-nolisten",
                    "tcp",
                    "-noreset",
                ],
                pass_fds=(write,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(write)
        self.processes.append(process)
        number = b""
        with os.fdopen(read, "rb") as pipe:
            while not number.endswith(b"\n"):
                chunk = pipe.read(1)
                if not chunk:
                    raise RuntimeError("Xvfb exited before it chose a display")
                number += chunk
        self.env["DISPLAY"] = ":" + number.decode().strip()

    def start_pulseaudio(self) -> None:
        """A private PulseAudio with one null sink, if pulseaudio is installed."""
        if _which("pulseaudio") is None:
            return
        runtime = self.tempdir("bandsync-pulse-")
        env = dict(os.environ, XDG_RUNTIME_DIR=runtime, HOME=runtime)
        process = subprocess.Popen(
            [
                "pulseaudio",
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--disable-shm",
                "--load=module-native-protocol-unix",
                "--load=module-null-sink sink_name=phone channels=2",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        socket_path = Path(runtime) / "pulse" / "native"
        _wait_for(lambda: True if socket_path.exists() else None, "pulseaudio", timeout=10)
        self.env["PULSE_SERVER"] = f"unix:{socket_path}"

    def close(self) -> None:
        for process in reversed(self.processes):
            _stop(process)
        self.processes.clear()
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)
        self.dirs.clear()


class Page:
    """A follower page in one engine; every method is a coroutine."""

    engine: str

    async def goto(self, url: str) -> None:
        raise NotImplementedError

    async def js(self, expression: str) -> Any:
        """The JSON value of ``expression`` evaluated in the page (its own globals)."""
        raise NotImplementedError

    async def click(self, selector: str) -> None:
        """A trusted click (a user gesture, as the autoplay policies want) on ``selector``."""
        raise NotImplementedError

    async def set_viewport(self, width: int, height: int) -> tuple[int, int]:
        """The page's viewport as near ``width`` x ``height`` as the engine allows (Firefox
        and WebKit windows cannot be narrower than ~450-500 px); returns the one it got."""
        raise NotImplementedError

    async def screenshot(self, path: str | Path) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def text(self, selector: str) -> str:
        """The rendered text of the first element matching ``selector``."""
        text = await self.js(f"document.querySelector({json.dumps(selector)}).innerText")
        return str(text)

    async def wait(self, condition: str, timeout: float = 5.0, every: float = 0.03) -> None:
        """Poll until ``condition`` is truthy in the page; TimeoutError (with it) if not."""
        deadline = time.monotonic() + timeout
        # A condition that throws (the page's modules not run yet) counts as false.
        check = (
            f"(() => {{ try {{ return Boolean({condition}); }} catch (e) {{ return false; }} }})()"
        )
        while not await self.js(check):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.engine}: not true within {timeout} s: {condition}")
            await asyncio.sleep(every)


class ChromiumPage(Page):
    engine = "chromium"

    def __init__(self, context: Any, page: Any) -> None:
        self.context = context
        self.page = page

    async def goto(self, url: str) -> None:
        await self.page.goto(url)

    async def js(self, expression: str) -> Any:
        return json.loads(await self.page.evaluate(f"() => JSON.stringify({expression})"))

    async def click(self, selector: str) -> None:
        await self.page.click(selector)

    async def set_viewport(self, width: int, height: int) -> tuple[int, int]:
        await self.page.set_viewport_size({"width": width, "height": height})
        return width, height

    async def screenshot(self, path: str | Path) -> None:
        await self.page.screenshot(path=str(path))

    async def close(self) -> None:
        await self.context.close()


class ThreadedPage(Page):
    """A page driven by a blocking WebDriver-style client, one call at a time off the loop."""

    def __init__(self, browser: ThreadedBrowser) -> None:
        self.browser = browser
        self.engine = browser.engine

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(function, *args)
        except TimeoutError as exc:  # the driver's socket, not an answer from the browser
            self.browser.wedged = True
            raise BrowserWedged(
                f"{self.engine} answered no driver call in {DRIVER_CALL_TIMEOUT_S:.0f} s"
            ) from exc

    async def goto(self, url: str) -> None:
        await self._call(self.browser.goto, url)

    async def js(self, expression: str) -> Any:
        text = await self._call(self.browser.evaluate, f"JSON.stringify({expression})")
        return json.loads(text) if isinstance(text, str) else None

    async def click(self, selector: str) -> None:
        await self._call(self.browser.click, selector)

    async def set_viewport(self, width: int, height: int) -> tuple[int, int]:
        return await self._call(self.browser.set_viewport, width, height)

    async def screenshot(self, path: str | Path) -> None:
        data = await self._call(self.browser.screenshot)
        await asyncio.to_thread(Path(path).write_bytes, data)

    async def close(self) -> None:
        # The browser stays up for the next test; leaving the page closes its socket. (A
        # wedged one is not asked: the pool replaces it.)
        if not self.browser.wedged:
            await self._call(self.browser.goto, "about:blank")


class ThreadedBrowser:
    """A Firefox or WebKit process with one window, reused page after page."""

    engine = ""

    def __init__(self) -> None:
        self.services = Services()
        self.wedged = False  # it answered no driver call in DRIVER_CALL_TIMEOUT_S

    def goto(self, url: str) -> None:
        raise NotImplementedError

    def evaluate(self, expression: str) -> Any:
        raise NotImplementedError

    def click(self, selector: str) -> None:
        raise NotImplementedError

    def window_size(self) -> tuple[int, int]:
        raise NotImplementedError

    def resize_window(self, width: int, height: int) -> None:
        raise NotImplementedError

    def set_viewport(self, width: int, height: int) -> tuple[int, int]:
        """Size the window so that the page's viewport is ``width`` x ``height``, as near as
        the browser allows; returns the viewport it got.

        WebDriver sizes the outer window, so the browser's own frame is measured and added.
        Windows have a minimum width: headless Firefox 500 px, MiniBrowser (its toolbar) 447.
        """
        for _ in range(3):
            inner = self.evaluate("[window.innerWidth, window.innerHeight]")
            if list(inner) == [width, height]:
                break
            outer_width, outer_height = self.window_size()
            self.resize_window(outer_width + width - inner[0], outer_height + height - inner[1])
        inner = self.evaluate("[window.innerWidth, window.innerHeight]")
        return int(inner[0]), int(inner[1])

    def screenshot(self) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        self.services.close()


class FirefoxBrowser(ThreadedBrowser):
    engine = "firefox"

    def __init__(
        self,
        *,
        audio_output: bool = True,
        headless: bool = True,
        pulse_env: dict[str, str] | None = None,
    ) -> None:
        """``headless=False``: a real window in an Xvfb display started here. ``pulse_env``
        (``PULSE_SERVER``, ``PULSE_SINK``): play into that PulseAudio daemon and sink
        instead of a private one, e.g. one that records several browsers on one clock."""
        super().__init__()
        with warnings.catch_warnings():
            # mozrunner, imported by marionette-driver, imports telnetlib and calls
            # distro's deprecated linux_distribution(): not ours to fix.
            warnings.simplefilter("ignore", DeprecationWarning)
            from marionette_driver.by import By
            from marionette_driver.marionette import Marionette

        self.by = By
        self.process: subprocess.Popen[bytes] | None = None
        try:
            prefs_set = dict(FIREFOX_PREFS)
            profile = Path(self.services.tempdir("bandsync-firefox-"))
            if not headless:
                self.services.start_xvfb()
            if pulse_env is not None:
                self.services.env.update(pulse_env)
            elif audio_output:
                self.services.start_pulseaudio()
            else:
                # No output even on a desktop with a sound card: PulseAudio only, and none there.
                prefs_set["media.cubeb.backend"] = "pulse"
                self.services.env["PULSE_SERVER"] = f"unix:{profile}/no-pulse-here"
            prefs = "".join(
                f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs_set.items()
            )
            (profile / "user.js").write_text(prefs)
            self.process = subprocess.Popen(
                [
                    FIREFOX,
                    *(["--headless"] if headless else []),
                    "--marionette",
                    "--no-remote",
                    "--profile",
                    str(profile),
                ],
                env=dict(os.environ, **self.services.env, MOZ_CRASHREPORTER_DISABLE="1"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            port_file = profile / "MarionetteActivePort"
            port = _wait_for(
                lambda: int(port_file.read_text()) if port_file.exists() else None, "firefox"
            )
            self.client = Marionette(
                host="127.0.0.1", port=port, socket_timeout=DRIVER_CALL_TIMEOUT_S
            )
            self.client.start_session()
            # A load that never completes fails the test instead of holding the client (and
            # with it every later call, the pool's close among them) for Marionette's 300 s.
            self.client.timeout.page_load = PAGE_LOAD_TIMEOUT_S
        except BaseException:
            self.close()
            raise

    def goto(self, url: str) -> None:
        self.client.navigate(url)

    def evaluate(self, expression: str) -> Any:
        # Marionette's sandbox sees the page through Xray wrappers; the page's own globals
        # (window.bandsync, its localStorage) are on wrappedJSObject.
        # Only the globals the expression names are taken: reading localStorage throws on a
        # page without storage (about:blank).
        names = [n for n in PAGE_GLOBALS if n in expression]
        script = (
            "return ((window) => {"
            + (f" const {{ {', '.join(names)} }} = window;" if names else "")
            + f" return {expression}; }})(window.wrappedJSObject);"
        )
        return self.client.execute_script(script)

    def click(self, selector: str) -> None:
        self.client.find_element(self.by.CSS_SELECTOR, selector).click()

    def window_size(self) -> tuple[int, int]:
        rect = self.client.window_rect
        return int(rect["width"]), int(rect["height"])

    def resize_window(self, width: int, height: int) -> None:
        self.client.set_window_rect(width=width, height=height)

    def screenshot(self) -> bytes:
        data: bytes = self.client.screenshot(format="binary", full=False)
        return data

    def close(self) -> None:
        # A call stuck in another thread holds the client's socket lock: ending the session
        # would wait for it for good. It gets a few seconds; then the process is stopped,
        # which ends the stuck call too.
        ender = threading.Thread(target=self._end_session, daemon=True)
        ender.start()
        ender.join(CLOSE_TIMEOUT_S)
        _stop(self.process)
        super().close()

    def _end_session(self) -> None:
        with contextlib.suppress(Exception):
            self.client.delete_session()


class WebKitBrowser(ThreadedBrowser):
    engine = "webkit"

    def __init__(
        self, *, audio_output: bool = True, pulse_env: dict[str, str] | None = None
    ) -> None:
        """``pulse_env`` as for ``FirefoxBrowser`` (MiniBrowser is always a real window)."""
        super().__init__()
        from selenium import webdriver
        from selenium.webdriver.common.by import By

        self.by = By
        try:
            self.services.start_xvfb()
            if pulse_env is not None:
                self.services.env.update(pulse_env)
            elif audio_output:
                self.services.start_pulseaudio()
            options = webdriver.WebKitGTKOptions()
            options.binary_location = minibrowser_path() or "MiniBrowser"
            options.add_argument("--automation")
            service = webdriver.WebKitGTKService(
                executable_path=_which(WEBKIT_DRIVER) or WEBKIT_DRIVER,
                env=dict(os.environ, **self.services.env),
            )
            with warnings.catch_warnings():
                # Selenium's own WebKitGTK class still passes remote_server_addr.
                warnings.simplefilter("ignore", DeprecationWarning)
                self.driver = webdriver.WebKitGTK(options=options, service=service)
        except BaseException:
            self.close()
            raise

    def goto(self, url: str) -> None:
        self.driver.get(url)

    def evaluate(self, expression: str) -> Any:
        return self.driver.execute_script(f"return {expression};")

    def click(self, selector: str) -> None:
        self.driver.find_element(self.by.CSS_SELECTOR, selector).click()

    def window_size(self) -> tuple[int, int]:
        size = self.driver.get_window_size()
        return int(size["width"]), int(size["height"])

    def resize_window(self, width: int, height: int) -> None:
        self.driver.set_window_size(width, height)

    def screenshot(self) -> bytes:
        data: bytes = self.driver.get_screenshot_as_png()
        return data

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.driver.quit()
        super().close()


class Engine:
    """Pages of one engine: ``page = await engine.open(url)``; ``await engine.close()``.

    Chromium opens a fresh browser context per page. Firefox and WebKit start one browser
    (seconds: Firefox takes ~5 s) that a ``BrowserPool`` keeps for a whole test module, so
    they hold one page at a time; a page's origin (the test server's port) keeps its
    localStorage apart from the previous test's.
    """

    def __init__(self, name: str, pool: BrowserPool) -> None:
        self.name = name
        self.pool = pool
        self.pages: list[Page] = []
        self._playwright: Any = None
        self._chromium: Any = None

    async def open(self, url: str, *, audio_output: bool = True) -> Page:
        """A page at ``url``. ``audio_output=False`` (Firefox and WebKit): a browser with no
        audio output at all, as on a machine without a sound device."""
        page: Page
        if self.name == "chromium" and not audio_output:
            raise ValueError("headless Chromium always has its own fake audio output")
        if self.name == "chromium":
            if self._chromium is None:
                from playwright.async_api import async_playwright

                self._playwright = await async_playwright().start()
                executable = chromium_path()
                self._chromium = await self._playwright.chromium.launch(
                    executable_path=executable, args=CHROMIUM_ARGS
                )
            context = await self._chromium.new_context()
            page = ChromiumPage(context, await context.new_page())
        else:
            if self.pages:
                raise RuntimeError(f"{self.name}: one page at a time (close the previous one)")
            page = ThreadedPage(await asyncio.to_thread(self.pool.get, self.name, audio_output))
        self.pages.append(page)
        await page.goto(url)
        return page

    async def close(self) -> None:
        for page in self.pages:
            with contextlib.suppress(Exception):
                await page.close()
        self.pages.clear()
        if self._chromium is not None:
            await self._chromium.close()
            await self._playwright.stop()
            self._chromium = self._playwright = None


class BrowserPool:
    """Firefox and WebKit processes started on first use and kept until ``close()``."""

    def __init__(self) -> None:
        self.browsers: dict[tuple[str, bool], ThreadedBrowser] = {}

    def get(self, name: str, audio_output: bool = True) -> ThreadedBrowser:
        key = (name, audio_output)
        if key in self.browsers and self.browsers[key].wedged:
            self.browsers.pop(key).close()
        if key not in self.browsers:
            factory = {"firefox": FirefoxBrowser, "webkit": WebKitBrowser}[name]
            self.browsers[key] = factory(audio_output=audio_output)
        return self.browsers[key]

    def close(self) -> None:
        for browser in self.browsers.values():
            browser.close()
        self.browsers.clear()
