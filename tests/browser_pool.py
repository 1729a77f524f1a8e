"""One headless Chromium per test process, a fresh browser context per page (twenty-third round).

Starting Chromium costs a second or more of CPU and wall time on the CI's two cores, and the page
tests started one per test. Here a test process (an xdist worker) starts one Chromium per set of
command-line flags, on first use, and every ``Phone``/``Browser`` gets its own *browser context*
(``Target.createBrowserContext``: its own cookies, storage, cache and permissions, as a separate
incognito profile) with one page in it (``Target.createTarget``). Closing the page disposes of the
context, so nothing one test signed in to or stored is seen by the next. The page is driven over its
own DevTools websocket exactly as before (real HTTP, real clicks and typing).

If the shared Chromium has died (a crash, a test that killed it), the next page starts a new one.
Chromium is ended when the test process exits (``atexit``) and, on Linux, when its parent dies.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Start cost only: nothing a page renders or a test reads depends on these (no GPU was already the
# rule; background networking, component updates, extensions, sync and the first-run/default-browser
# checks are all things a headless test browser never needs).
#
# The omnibox popups (forty-sixth round, suite46a): headless Chromium (new headless) gives every window
# the address bar's dropdown as two WebUI pages (chrome://omnibox-popup.top-chrome/ and its "AI mode"
# one), each loaded in a renderer of its own -- and every page here is a new window (a context of its
# own). Those were ~0.65 s of the ~1.05 s of Chromium CPU a page cost (measured: a page navigated to a
# local site, a field typed in, closed; 20 pages: 1.07 s -> 0.37-0.39 s each). No test has an address
# bar to type in; Puppeteer turns the same two features off for the same reason (its PR #15278).
NO_OMNIBOX_POPUP = "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup"
QUIET = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-component-update", "--disable-background-networking",
         "--disable-sync", "--disable-default-apps", "--mute-audio", NO_OMNIBOX_POPUP)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def exchange(ws: Any, n: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """One DevTools Protocol call ``n`` over ``ws``: sent, and its answer read (events between are
    passed over); an error answer raises. The browser's and each page's connection share it."""
    ws.send(json.dumps({"id": n, "method": method, "params": params}))
    while True:
        msg = json.loads(ws.recv(timeout=30))
        if msg.get("id") == n:
            if "error" in msg:
                raise RuntimeError(msg["error"])
            return msg["result"]


# How a wait is checked in the page (``until``): the expression is tried, then again every 20 ms, in
# the page itself, for up to 5 s per DevTools call. The waits had asked over the websocket every 0.1 s
# and slept between; a condition that became true just after a try cost up to 0.1 s more each, and
# the tests wait some 100 times a file (measured on probeui26: 92 sleeps, 9 s of them).
_POLL_MS = 20
_CHUNK_S = 5.0
_WAITER = """(async () => {
  const end = performance.now() + %d;
  for (;;) {
    let v;
    if (document.readyState !== "loading") {  // (a document still parsing is not yet the page a person sees)
      try { v = await (
%s
      ); } catch (e) { v = undefined; }
    }
    if (v) return {t: true, v};
    if (performance.now() >= end) return {t: false};
    await new Promise(r => setTimeout(r, %d));
  }
})()"""


def shooting(*names: str) -> bool:
    """Whether a page test's screenshots are taken: when ``HUREN_SCREENSHOTS`` (or a file's own
    variable among ``names``) is set, for a person to look at. Otherwise none is: no test reads its
    own screenshot (those that read pixels take them themselves), and a capture -- the whole page laid
    out, drawn in software and PNG-encoded -- cost Chromium ~0.06 s of CPU each, some 20 a file."""
    return any(os.environ.get(name) for name in ("HUREN_SCREENSHOTS", *names))


def until(call: Any, expression: str, timeout: float, on_error: Any = None) -> Any:
    """Wait up to ``timeout`` seconds for the page's ``expression`` to be true, and return its value
    (``None`` at the timeout). ``call(method, **params)`` is the page's DevTools call (an error answer
    raises ``RuntimeError``). The expression is checked in the page (``_WAITER``): it answers as soon
    as the DOM does, where a poll from here slept between questions -- never while the document is still
    parsing (``readyState`` "loading"): a wait on the new address alone had answered before the new page's
    elements existed, and the test's next read of one found none (ci185, ui38's mistyped address). What counts as true is what a
    poll had counted: a JavaScript truthy value that is falsy here (``[]``, ``{}``) is asked again
    after 0.1 s, as before. A document replaced under the wait (a navigation, a submit) ends the call
    with an error: asked again in the new one. An ``expression`` that is not one (statements) is
    polled as before, every 0.1 s. ``on_error(exc)`` is told each error (the caller's last-error note)."""
    deadline = time.monotonic() + timeout
    inline = True
    while (left := deadline - time.monotonic()) > 0:
        try:
            if inline:
                out = call("Runtime.evaluate", expression=_WAITER % (int(min(left, _CHUNK_S) * 1000), expression, _POLL_MS),
                           returnByValue=True, awaitPromise=True)
                if "exceptionDetails" in out:  # the wrapper did not compile: statements, not an expression
                    inline = False
                    continue
                got = out["result"].get("value") or {}
                if not got.get("t"):  # this call's 5 s are up: ask again
                    continue
                value = got.get("v")
            else:
                out = call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
                if "exceptionDetails" in out:
                    raise RuntimeError(out["exceptionDetails"])
                value = out["result"].get("value")
        except RuntimeError as exc:  # between documents
            if on_error is not None:
                on_error(exc)
            time.sleep(0.02 if inline else 0.1)
            continue
        if value:
            return value
        time.sleep(0.1)
    return None


class _Chromium:
    """One Chromium process and a websocket to its browser target (for the Target domain)."""

    def __init__(self, flags: tuple[str, ...]) -> None:
        from websockets.sync.client import connect

        assert CHROMIUM, "Chromium is not installed"
        self.profile = Path(tempfile.mkdtemp(prefix="huren-chromium-"))
        self.proc = subprocess.Popen(
            [CHROMIUM, *flags, f"--user-data-dir={self.profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)  # noqa: PLW1509
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise AssertionError("Chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self.port = int(port)
        self.ws = connect(f"ws://127.0.0.1:{self.port}{path}", max_size=None, open_timeout=10)
        self.n = 0
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        with self.lock:
            self.n += 1
            return exchange(self.ws, self.n, method, params)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


_browsers: dict[tuple[str, ...], _Chromium] = {}


def _shared(flags: tuple[str, ...]) -> _Chromium:
    browser = _browsers.get(flags)
    if browser is None or not browser.alive():
        if browser is not None:
            browser.close()
        browser = _browsers[flags] = _Chromium(flags)
    return browser


@atexit.register
def _close_all() -> None:
    while _browsers:
        _browsers.popitem()[1].close()


class Page:
    """A page in a context of its own in the shared Chromium: ``ws_url`` is its DevTools websocket."""

    def __init__(self, *flags: str) -> None:
        key = tuple(dict.fromkeys((*QUIET, *flags)))
        try:
            self.browser = _shared(key)
            self.context = self.browser.call("Target.createBrowserContext", disposeOnDetach=False)["browserContextId"]
        except Exception:  # a Chromium that stopped answering: start a fresh one once
            stale = _browsers.pop(key, None)
            if stale is not None:
                stale.close()
            self.browser = _shared(key)
            self.context = self.browser.call("Target.createBrowserContext", disposeOnDetach=False)["browserContextId"]
        # as the first tab of a Chromium of its own was (measured): a 780x524 window (a 780x437 viewport
        # for a page that sets no size) that does not have the window focus -- a new target in the
        # foreground has it, and then a heading the page focuses after a click draws its focus ring
        # (:focus-visible) in screenshots where it had not
        self.target = self.browser.call("Target.createTarget", url="about:blank", browserContextId=self.context,
                                        background=True, width=780, height=524)["targetId"]
        self.ws_url = f"ws://127.0.0.1:{self.browser.port}/devtools/page/{self.target}"

    def close(self) -> None:
        """Dispose of the context (its page, cookies and storage go with it)."""
        if self.browser.alive():
            with contextlib.suppress(Exception):
                self.browser.call("Target.disposeBrowserContext", browserContextId=self.context)
