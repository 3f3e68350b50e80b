"""Check the built documentation site in a real browser (`nox -s docs` runs it).

Serves the site with ``python -m http.server`` on 127.0.0.1 (a free port), opens pages
in headless Chromium (Debian's ``chromium``, driven by Playwright), and fails when:

- a page logs a console error, raises an uncaught exception, or one of its requests
  fails or answers 4xx/5xx;
- an internal link of a page (``<a href>`` to the same server) does not load, or its
  ``#fragment`` names no element of the target page;
- a marble diagram (``code.marble``) wraps over two lines or is not in a monospace font.

It saves a screenshot of each page checked, the first as ``--screenshot``.

Usage: ``python tools/check_site.py site --screenshot .nox/docs-screenshot.png``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urldefrag

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, ConsoleMessage, Page, Response

DEFAULT_PAGES = ("index.html", "reference/rxtasks.html")
# Flags for Chromium in a container without network: no sandbox (root), no GPU, and no
# background traffic to Google's services (refused here, and noise in the console).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_LINE = re.compile(r"port (?P<port>\d+)")


@dataclass
class Problems:
    """Everything found wrong, by page."""

    found: list[str] = field(default_factory=list[str])

    def add(self, where: str, what: str) -> None:
        """Record one problem."""
        self.found.append(f"{where}: {what}")


class _Ids(HTMLParser):
    """Collects the ``id`` (and legacy ``name``) attributes of a page: its fragments."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if value and (key == "id" or (tag == "a" and key == "name")):
                self.ids.add(value)


def find_chromium() -> str:
    """Return the Chromium binary to drive; exit with instructions if there is none."""
    explicit = os.environ.get("CHROMIUM")
    found = explicit or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).exists():
        sys.exit(
            "check_site: no Chromium found (looked for $CHROMIUM, `chromium`,"
            " `chromium-browser`). Install Debian's package: apt-get install chromium"
        )
    return found


@dataclass
class Server:
    """``python -m http.server`` for the site, on 127.0.0.1 and a port it chose."""

    process: subprocess.Popen[str]
    base: str

    @classmethod
    def start(cls, site: Path) -> Server:
        """Start the server and read its port from its first line."""
        process = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
            cwd=site,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        match = SERVER_LINE.search(line)
        if match is None:
            process.kill()
            sys.exit(f"check_site: http.server did not start: {line!r}")
        return cls(process, f"http://127.0.0.1:{match['port']}/")

    def stop(self) -> None:
        """Stop the server."""
        self.process.terminate()
        self.process.wait(timeout=10)


def fetch(url: str) -> tuple[int, str]:
    """GET a URL of the local server: its status and, for HTML, its text."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = answer.read()
            kind = answer.headers.get_content_type()
            return answer.status, body.decode("utf-8", "replace") if kind == "text/html" else ""
    except urllib.error.HTTPError as error:
        return error.code, ""


def watch_page(page: Page, where: str, problems: Problems) -> None:
    """Record the page's console errors, uncaught exceptions and failed requests."""

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.add(where, f"console error: {message.text}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            problems.add(where, f"HTTP {response.status} for {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.add(where, f"uncaught exception: {error}"))
    page.on("requestfailed", lambda request: problems.add(where, f"failed: {request.url}"))
    page.on("response", on_response)


def internal_links(page: Page, base: str) -> Iterator[str]:
    """The page's links to its own server, resolved, without duplicates."""
    hrefs: list[str] = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    seen: set[str] = set()
    for href in hrefs:
        if href.startswith(base) and href not in seen:
            seen.add(href)
            yield href


def check_links(page: Page, base: str, where: str, problems: Problems) -> int:
    """Load every internal link of the page and check its fragment; return how many."""
    pages: dict[str, tuple[int, set[str]]] = {}
    links = list(internal_links(page, base))
    for link in links:
        url, fragment = urldefrag(link)
        if url not in pages:
            status, html = fetch(url)
            parser = _Ids()
            parser.feed(html)
            pages[url] = (status, parser.ids)
        status, ids = pages[url]
        if status != 200:
            problems.add(where, f"broken link {link} (HTTP {status})")
        elif fragment and fragment not in ids:
            problems.add(where, f"broken link {link} (no element #{fragment})")
    return len(links)


def check_marbles(page: Page, where: str, problems: Problems) -> int:
    """Check that each marble diagram is on one line, in a monospace font; return how many."""
    marbles: list[dict[str, object]] = page.eval_on_selector_all(
        "code.marble",
        """codes => codes.map(code => ({
            text: code.textContent,
            lines: code.getClientRects().length,
            font: getComputedStyle(code).fontFamily,
        }))""",
    )
    for marble in marbles:
        if marble["lines"] != 1:
            problems.add(where, f"marble {marble['text']!r} spans {marble['lines']} lines")
        if "mono" not in str(marble["font"]).lower():
            problems.add(where, f"marble {marble['text']!r} is not monospace: {marble['font']}")
    return len(marbles)


def check_page(browser: Browser, base: str, path: str, shot: Path, problems: Problems) -> None:
    """Load one page, check it, and take its screenshot."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch_page(page, path, problems)
    response = page.goto(base + path, wait_until="networkidle")
    if response is None or response.status != 200:
        problems.add(path, f"did not load (HTTP {response.status if response else '?'})")
    title = page.title()
    links = check_links(page, base, path, problems)
    marbles = check_marbles(page, path, problems)
    # A phone's width too, where a line is short and a marble most likely to wrap.
    page.set_viewport_size({"width": 390, "height": 844})
    check_marbles(page, f"{path} (390 px wide)", problems)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.wait_for_timeout(300)  # late console messages (the search worker) are counted too
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    page.close()
    print(f"{path}: {title!r}, {links} internal links, {marbles} marble diagrams -> {shot}")


def screenshot_paths(first: Path, pages: list[str]) -> list[Path]:
    """``first`` for the first page; beside it, one named after each other page."""
    others = [first.with_name(f"{first.stem}-{Path(p).stem}{first.suffix}") for p in pages[1:]]
    return [first, *others]


def main() -> int:
    """Check the site; exit 1 listing every problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site (mkdocs' site_dir)")
    parser.add_argument("--screenshot", type=Path, default=Path(".nox/docs-screenshot.png"))
    parser.add_argument("--page", action="append", dest="pages", help="pages to check")
    args = parser.parse_args()
    pages: list[str] = args.pages or list(DEFAULT_PAGES)
    if not (args.site / "index.html").is_file():
        sys.exit(f"check_site: {args.site}/index.html not found: build the site first")
    chromium = find_chromium()

    from playwright.sync_api import sync_playwright

    problems = Problems()
    server = Server.start(args.site)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            print(f"Chromium {browser.version} ({chromium}), site at {server.base}")
            for path, shot in zip(pages, screenshot_paths(args.screenshot, pages), strict=True):
                check_page(browser, server.base, path, shot, problems)
            browser.close()
    finally:
        server.stop()
    for problem in problems.found:
        print(f"PROBLEM {problem}", file=sys.stderr)
    if problems.found:
        print(f"check_site: {len(problems.found)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_site: {len(pages)} pages, no console errors, no broken internal links")
    return 0


if __name__ == "__main__":
    sys.exit(main())
