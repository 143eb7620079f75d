"""Load the built documentation site in headless Chromium and fail on console errors.

Serves ``site/`` (``make docs``) on a free localhost port, starts Debian's
``chromium`` headless, and drives it over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: file descriptors 3 and 4, no extra packages). For
each page it records what a developer console would show in red: ``console.error``
and ``console.assert`` calls, uncaught exceptions, and the browser's own error
entries (a resource that failed to load, a blocked script). A page also has to
render its heading. Exit status 0 when every page is clean, 1 otherwise.

Usage: ``python tools/check_site.py [SITE_DIR] [--page PATH ...]`` (``make docs-check``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

#: Pages loaded by default: the index and one API page.
DEFAULT_PAGES = ("index.html", "api/samplers/index.html")
#: The flags that let Chromium run headless as root on a machine without a network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    """Path of a Chromium binary (``/usr/bin/chromium`` first), or ``None``."""
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, chromium: str, user_data_dir: str) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        self.proc = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            close_fds=False,  # fds 3 and 4 are set up by preexec_fn
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_dup_to_3_4(to_chrome_r, from_chrome_w),
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._lock = threading.Lock()
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._lock:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Send one command and wait (up to 30 s) for its result."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self._lock:
                reply = self._replies.pop(self._next_id, None)
            if reply is not None:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            time.sleep(0.02)
        raise TimeoutError(f"Chromium did not answer {method} within 30 s")

    def wait_for(self, method: str, session: str, since: int, timeout: float = 30) -> bool:
        """Wait for an event of ``method`` in ``session`` after event number ``since``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if any(
                    e.get("method") == method and e.get("sessionId") == session
                    for e in self.events[since:]
                ):
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Close the browser and the pipes."""
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)


def _dup_to_3_4(read_fd: int, write_fd: int) -> Any:
    def setup() -> None:  # in the child: Chromium reads commands on fd 3, writes on fd 4
        r, w = os.dup(read_fd), os.dup(write_fd)
        os.dup2(r, 3)
        os.dup2(w, 4)

    return setup


def _problems(events: list[dict[str, Any]], session: str) -> list[str]:
    out = []
    for e in events:
        if e.get("sessionId") != session:
            continue
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            out.append(f"console.{p['type']}: {args}")
        elif e["method"] == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text", "")
            out.append(f"uncaught exception: {text.splitlines()[0] if text else d}")
        elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            where = entry.get("url", "")
            out.append(f"{entry.get('source', 'browser')} error: {entry.get('text')} {where}")
    return out


def check_site(site: Path, pages: tuple[str, ...] = DEFAULT_PAGES) -> dict[str, list[str]]:
    """Load each page of ``site`` in headless Chromium.

    Returns:
        ``{page: [problem, ...]}``: console errors, exceptions, failed loads, and a
        missing ``h1`` heading; empty lists when the page is clean.

    Raises:
        FileNotFoundError: ``site`` or a page is missing, or Chromium is not installed.
    """
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found (Debian: apt-get install chromium)")
    for page in pages:
        if not (site / page).is_file():
            raise FileNotFoundError(f"{site / page} not found: build the site first (make docs)")
    handler = functools.partial(_Quiet, directory=str(site))
    server = socketserver.TCPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="ebmlab-chromium-") as profile:
        browser = _DevTools(chromium, profile)
        try:
            for page in pages:
                target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
                session = browser.send(
                    "Target.attachToTarget", {"targetId": target, "flatten": True}
                )["sessionId"]
                for domain in ("Runtime", "Log", "Page"):
                    browser.send(f"{domain}.enable", session=session)
                since = len(browser.events)
                url = f"http://127.0.0.1:{port}/{page}"
                browser.send("Page.navigate", {"url": url}, session=session)
                problems = []
                if not browser.wait_for("Page.loadEventFired", session, since):
                    problems.append("the page did not finish loading within 30 s")
                time.sleep(1.0)  # scripts that run after the load event
                heading = browser.send(
                    "Runtime.evaluate",
                    {"expression": "(document.querySelector('h1') || {}).textContent || ''"},
                    session=session,
                )["result"].get("value", "")
                if not heading.strip():
                    problems.append("no h1 heading rendered")
                problems += _problems(browser.events[since:], session)
                results[page] = problems
                browser.send("Target.closeTarget", {"targetId": target})
        finally:
            browser.close()
            server.shutdown()
            server.server_close()
    return results


def main(argv: list[str] | None = None) -> int:
    """Check the pages; print one line per page and per problem."""
    parser = argparse.ArgumentParser(description="Load the built site in headless Chromium.")
    parser.add_argument("site", nargs="?", default="site", help="the built site (default site/)")
    parser.add_argument("--page", action="append", help="page to load (default: index, API)")
    args = parser.parse_args(argv)
    try:
        results = check_site(Path(args.site), tuple(args.page or DEFAULT_PAGES))
    except FileNotFoundError as exc:
        print(f"check_site: {exc}", file=sys.stderr)
        return 2
    bad = 0
    for page, problems in results.items():
        print(f"{page}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        for p in problems:
            print(f"  {p}")
        bad += bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
