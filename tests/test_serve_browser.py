"""`itsm serve` in a real browser: Debian's chromium, headless, driven by playwright.

The browser logs in with the tokened address, lands on the clean one and shows the console (its xterm.js
rows are read from the terminal's own buffer); a browser without the token gets the login-needed page; pages
of other origins in the logged-in browser cannot open a console.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from serve_helpers import DESK_NAME, TOKEN, make_desk_user, serving, token_file

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)"
)
QUEUE_HEADER = f"Queue | {DESK_NAME} (admin,shift_lead)"
OTHER_NAME = "desk-host.test"  # the browser resolves it to this machine, as a colleague's would the host's
EVIL_NAME = "evil.example"  # so does this one: an attacker's site, or a DNS rebinding to the desk's address

# textual.js keeps its xterm.js terminal in a closure; this catches the object that holds it as it is made
# (it sets ``websocket_url`` first, ``terminal`` next), so the test can read the rows xterm.js shows.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "websocket_url", {
  configurable: true,
  set(value) {
    const own = {value, writable: true, configurable: true, enumerable: true};
    Object.defineProperty(this, "websocket_url", own);
    (window.__consoles = window.__consoles || []).push(this);
  },
});
"""
ROWS = """() => {
  const console_ = (window.__consoles || [])[0];
  if (!console_ || !console_.terminal) return [];
  const buffer = console_.terminal.buffer.active, rows = [];
  for (let i = 0; i < console_.terminal.rows; i++) {
    const line = buffer.getLine(buffer.viewportY + i);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows;
}"""
TRY_SOCKET = """url => new Promise(resolve => {
  const socket = new WebSocket(url);
  socket.onopen = () => { socket.close(); resolve("opened"); };
  socket.onerror = () => resolve("refused");
  setTimeout(() => resolve("no answer"), 15000);
})"""


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                f"--host-resolver-rules=MAP {OTHER_NAME} 127.0.0.1,MAP {EVIL_NAME} 127.0.0.1",
            ],
        )
        yield chromium
        chromium.close()


class _Cats(BaseHTTPRequestHandler):
    """The attacker's page: harmless to look at; its script is what the test runs in it."""

    def do_GET(self) -> None:
        body = b"<html><body>cute cats</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def attacker_port() -> Iterator[int]:
    """A real web server on this machine, another port: the browser treats its pages as local ones."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Cats)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def desk(sqlite_url: str) -> str:
    make_desk_user(sqlite_url)
    return sqlite_url


def rows_when(page, wanted: Callable[[list[str]], bool], what: str, seconds: float = 40) -> list[str]:
    """The terminal's rows once ``wanted`` holds for them."""
    deadline = time.monotonic() + seconds
    rows: list[str] = []
    while time.monotonic() < deadline:
        rows = page.evaluate(ROWS)
        if rows and wanted(rows):
            return rows
        page.wait_for_timeout(100)
    raise AssertionError(f"never {what}; the terminal's rows: {rows}")


def rows_with(page, text: str) -> list[str]:
    return rows_when(page, lambda rows: any(text in row for row in rows), f"{text!r} in the terminal")


def test_the_browser_logs_in_once_and_then_shows_the_console(browser, desk, tmp_path):
    with serving(desk, "--token-file", str(token_file(tmp_path))) as served:
        context = browser.new_context(viewport={"width": 1100, "height": 700})
        context.add_init_script(CATCH_TERMINAL)
        page = context.new_page()
        response = page.goto(f"{served.url}/?token={TOKEN}")
        assert response is not None and response.status == 200
        login = response.request.redirected_from
        assert login is not None and login.url == f"{served.url}/?token={TOKEN}"
        assert login.response().status == 303
        assert page.url == f"{served.url}/"  # the token is gone from the address bar

        rows = rows_with(page, QUEUE_HEADER)
        assert any(row[1:].startswith("Ref ") for row in rows)  # the queue's column headings, after the marks

        (cookie,) = context.cookies()
        assert cookie["name"] == f"itsm-login-{served.port}"
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # no script of the page can read it

        # The console takes keys: the filter line opens and echoes what is typed.
        page.locator(".xterm-helper-textarea").focus()
        page.keyboard.press("/")
        # The filter has the keys once the footer no longer offers the queue's own (Take, ...).
        rows_when(page, lambda rows: "Take" not in rows[-1], "the filter focused")
        page.keyboard.type("zzqx", delay=20)
        rows_with(page, "zzqx")

        stranger = browser.new_context()
        refused = stranger.new_page().goto(f"{served.url}/")
        assert refused is not None and refused.status == 401
        assert "needs a login" in refused.text()
        stranger.close()

        # Back in the logged-in browser, a fresh tab is let straight in.
        second = context.new_page()
        assert second.goto(f"{served.url}/").status == 200
        context.close()


def test_pages_of_other_origins_cannot_open_a_console_with_the_cookie(browser, desk, tmp_path, attacker_port):
    with serving(desk, "--token-file", str(token_file(tmp_path))) as served:
        context = browser.new_context()
        page = context.new_page()
        assert page.goto(f"{served.url}/?token={TOKEN}").status == 200
        socket_url = f"ws://127.0.0.1:{served.port}/ws"

        # Same site (cookies ignore ports, so the browser sends the login along): the Origin check refuses.
        assert page.goto(f"http://127.0.0.1:{attacker_port}/").status == 200
        assert page.evaluate(TRY_SOCKET, socket_url) == "refused"
        assert served.wait_logged(f"Origin 'http://127.0.0.1:{attacker_port}', not this server's"), (
            served.logged()
        )
        assert served.wait_logged('"GET /ws" 403')

        # Another site: SameSite=Strict keeps the cookie home, so the socket comes without a login.
        assert page.goto(f"http://{EVIL_NAME}:{attacker_port}/").status == 200
        assert page.evaluate(TRY_SOCKET, socket_url) == "refused"
        assert served.wait_logged('"GET /ws" 401'), served.logged()

        # A name rebound to the desk's address is another site too: no cookie, the login page.
        rebound = page.goto(f"http://{EVIL_NAME}:{served.port}/")
        assert rebound is not None and rebound.status == 401
        assert page.evaluate(TRY_SOCKET, f"ws://{EVIL_NAME}:{served.port}/ws") == "refused"

        # The server's own page in the same browser still opens a console.
        page.goto(f"{served.url}/")
        assert page.evaluate(TRY_SOCKET, socket_url) == "opened"
        context.close()


def test_on_all_addresses_a_browser_elsewhere_gets_a_console_on_the_name_it_used(browser, desk, tmp_path):
    with serving(desk, "--token-file", str(token_file(tmp_path)), "--host", "0.0.0.0") as served:
        context = browser.new_context(viewport={"width": 1100, "height": 700})
        context.add_init_script(CATCH_TERMINAL)
        page = context.new_page()
        address = f"http://{OTHER_NAME}:{served.port}/"
        assert page.goto(f"{address}?token={TOKEN}").status == 200
        assert page.url == address
        assert page.evaluate("window.__consoles[0].websocket_url") == f"ws://{OTHER_NAME}:{served.port}/ws"
        rows_with(page, QUEUE_HEADER)
        context.close()
