"""The built site in a real browser: Debian's Chromium, headless, on the site served from
127.0.0.1. The home page and a reference page render, the console picture shows, and the search
box finds "deadline". Without Chromium the test is skipped with the reason (under CI it fails:
.ci/run installs it)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
)
WAIT_S = 90.0


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        why = "Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must check the site in a browser, but {why}", pytrace=False)
        pytest.skip(why)
    return found


class _Site(SimpleHTTPRequestHandler):
    """The built site, and a place for the check page to post what it saw."""

    seen: list[dict[str, Any]]
    arrived: threading.Event

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(json.loads(body))
        self.arrived.set()
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(built_site: Path) -> Iterator[tuple[str, list[dict[str, Any]], threading.Event]]:
    shutil.copy(HERE / "site_check.html", built_site / "_site_check.html")
    seen: list[dict[str, Any]] = []
    arrived = threading.Event()
    handler = type("Site", (_Site,), {"seen": seen, "arrived": arrived})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(built_site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen, arrived
    finally:
        server.shutdown()
        server.server_close()


def test_the_site_renders_searches_and_shows_the_console(
    served: tuple[str, list[dict[str, Any]], threading.Event], tmp_path: Path
) -> None:
    url, seen, arrived = served
    browser = subprocess.Popen(
        [chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"{url}/_site_check.html"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert arrived.wait(WAIT_S), f"the check page posted nothing within {WAIT_S:g} s"
    finally:
        os.killpg(browser.pid, signal.SIGTERM)
        try:
            browser.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(timeout=10)
    [page] = seen
    assert "error" not in page, page
    assert page["home_title"].startswith("evman") and page["home_h1"].startswith("evman"), page
    picture = page["picture"]
    assert picture and picture["shown_width"] > 300 and picture["shown_height"] > 100, f"the console picture: {picture}"
    assert page["cli_h1"].startswith("Command line") and "evman-trigger" in page["cli_sections"], page
    assert "/guides/plan/" in page["search"] and "/reference/definitions/" in page["search"], page["search"]
