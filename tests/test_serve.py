"""`itsm serve` serves the console to a browser, behind a login: real servers, a raw HTTP/WebSocket client.

Each test starts ``itsm serve`` as its own process and talks to it as a browser (or an attacker) would: the
page, the login, the WebSocket that drives a console. The consoles run as this process's OS login, made a
desk user of each test database. The browser itself is in ``test_serve_browser.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import time
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp
import pytest
from serve_helpers import (
    DESK_NAME,
    OS_LOGIN,
    TOKEN,
    Served,
    make_desk_user,
    screen_text,
    serving,
    token_file,
)
from sqlalchemy.engine import make_url

QUEUE_HEADER = f"Queue | {DESK_NAME} (admin,shift_lead)"  # the console's first line


@pytest.fixture
def desk(sqlite_url: str) -> str:
    make_desk_user(sqlite_url)
    return sqlite_url


def no_redirects() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())


async def log_in(http: aiohttp.ClientSession, served: Served, *, host: str | None = None) -> tuple[str, str]:
    """Trade the token for the login cookie: (the ``Cookie`` header to send, the redirect's Location)."""
    headers = {"Host": host} if host else {}
    async with http.get(f"{served.url}/?token={TOKEN}", headers=headers, allow_redirects=False) as response:
        assert response.status == 303, await response.text()
        cookie = SimpleCookie(response.headers["Set-Cookie"])
        (name,) = cookie
        return f"{name}={cookie[name].value}", response.headers["Location"]


async def open_console(
    http: aiohttp.ClientSession, served: Served, cookie: str, origin: str, *, host: str | None = None
) -> aiohttp.ClientWebSocketResponse:
    """A console's socket, opened as textual.js opens it: then the terminal's size, which starts drawing."""
    headers = {"Cookie": cookie, "Origin": origin} | ({"Host": host} if host else {})
    ws = await http.ws_connect(f"{served.url.replace('http', 'ws')}/ws?width=100&height=30", headers=headers)
    await ws.send_json(["resize", {"width": 100, "height": 30}])
    return ws


async def refused_status(http: aiohttp.ClientSession, served: Served, headers: dict[str, str]) -> int:
    """The HTTP status a WebSocket upgrade gets instead of the 101 that would open a console."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(f"{served.url.replace('http', 'ws')}/ws", headers=headers)
    return refused.value.status


async def screen_until(ws: aiohttp.ClientWebSocketResponse, wanted: str, seconds: float = 40) -> str:
    """The console's output until ``wanted`` is on the screen (its text without escape sequences)."""
    data = b""
    try:
        async with asyncio.timeout(seconds):  # one deadline: a receive's own timeout restarts at each ping
            while wanted not in screen_text(data):
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.BINARY:
                    data += message.data
                elif message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    raise AssertionError(f"the console closed before {wanted!r}: {screen_text(data)!r}")
    except TimeoutError:
        raise AssertionError(f"{wanted!r} never appeared; the screen so far: {screen_text(data)!r}") from None
    return screen_text(data)


# --------------------------------------------------------------------------- the login


async def test_the_page_needs_the_token_then_the_cookie(desk, tmp_path):
    with serving(desk, "--token-file", str(token_file(tmp_path))) as served:
        async with no_redirects() as http:
            async with http.get(f"{served.url}/") as response:
                assert response.status == 401
                page = await response.text()
                assert "needs a login" in page and "?token=" in page
                assert "textual.js" not in page
            for path in ("/static/js/textual.js", "/download/anything", "/nothing-here"):
                async with http.get(served.url + path) as response:
                    assert response.status == 401, path

            async with http.get(
                f"{served.url}/?fontsize=14&token={TOKEN}", allow_redirects=False
            ) as response:
                assert response.status == 303
                # The clean URL: the token gone from the address bar (and the history), the rest kept.
                assert response.headers["Location"] == f"{served.url}/?fontsize=14"
                assert response.headers["Cache-Control"] == "no-store"
                assert response.headers["Referrer-Policy"] == "no-referrer"
                morsel = next(iter(SimpleCookie(response.headers["Set-Cookie"]).values()))
                assert morsel.key == f"itsm-login-{served.port}"
                assert morsel["httponly"] is True
                assert morsel["samesite"] == "Strict"
                assert morsel["path"] == "/"
                assert not morsel["secure"]  # plain http: a Secure cookie would never come back
                assert int(morsel["max-age"]) == 12 * 3600
                assert TOKEN not in morsel.value  # the cookie proves the login without being the token
                cookie = f"{morsel.key}={morsel.value}"

            async with http.get(f"{served.url}/?fontsize=14", headers={"Cookie": cookie}) as response:
                assert response.status == 200
                page = await response.text()
                assert response.headers["X-Frame-Options"] == "DENY"
            assert "textual.js" in page
            assert f'data-session-websocket-url="ws://127.0.0.1:{served.port}/ws"' in page
            assert f"http://127.0.0.1:{served.port}/static/js/textual.js" in page
            assert 'data-font-size="14"' in page
            async with http.get(f"{served.url}/static/js/textual.js", headers={"Cookie": cookie}) as response:
                assert response.status == 200
            # No third party is asked for anything: the font comes from the server itself.
            assert "googleapis" not in page and "https://" not in page
            font = f"http://127.0.0.1:{served.port}/static/fonts/RobotoMono-VariableFont_wght.ttf"
            assert f'src: url("{font}")' in page
            async with http.get(font, headers={"Cookie": cookie}) as response:
                assert response.status == 200 and len(await response.read()) > 10_000

            # Tampered with, or signed with another token: no login.
            issued, _, mac = cookie.partition("=")[2].partition(".")
            forged = {
                "later issue": f"{int(issued) + 1}.{mac}",
                "other mac": f"{issued}.{'0' * 64}",
                "the token itself": TOKEN,
            }
            for what, value in forged.items():
                headers = {"Cookie": f"itsm-login-{served.port}={value}"}
                async with http.get(f"{served.url}/", headers=headers) as response:
                    assert response.status == 401, what
    assert TOKEN not in served.printed() + served.logged()  # a token file's token is never printed


async def test_wrong_tokens_are_refused_logged_and_then_not_even_checked(desk, tmp_path):
    with serving(desk, "--token-file", str(token_file(tmp_path))) as served:
        async with no_redirects() as http:
            guesses = [TOKEN[:-1], TOKEN + "x", "", TOKEN.upper(), "é" + TOKEN[1:]]
            for guess in guesses:
                async with http.get(f"{served.url}/", params={"token": guess}) as response:
                    assert response.status == 403, guess
                    assert "Wrong token" in await response.text()
                    assert "Set-Cookie" not in response.headers
            # Five wrong in a minute from this address: no token is checked now, not even the right one.
            async with http.get(f"{served.url}/?token={TOKEN}", allow_redirects=False) as response:
                assert response.status == 429
                assert 50 <= int(response.headers["Retry-After"]) <= 60
                assert "Set-Cookie" not in response.headers
        assert served.wait_logged("too many wrong tokens")
    log = served.logged()
    assert log.count("wrong token from 127.0.0.1") == 5
    assert "(5 from there in the last minute)" in log
    assert TOKEN not in log and "token=(hidden)" in log  # the access log keeps no token, right or wrong


async def test_a_new_token_is_printed_once_as_the_address_to_open(desk):
    with serving(desk) as served:
        (line,) = [line for line in served.stdout if line.startswith("open ")]
        address = line.split()[1]
        assert address.startswith(f"http://127.0.0.1:{served.port}/?token=")
        token = address.partition("=")[2]
        assert len(token) == 43  # secrets.token_urlsafe(32)
        assert f"as {OS_LOGIN} (admin, shift_lead)" in served.printed()
        async with no_redirects() as http, http.get(address, allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == f"{served.url}/"
    assert token not in served.logged()


# --------------------------------------------------------------------------- the console's socket


async def test_the_console_opens_only_with_the_cookie_and_the_servers_own_origin(desk, tmp_path):
    with serving(desk, "--token-file", str(token_file(tmp_path))) as served:
        async with no_redirects() as http:
            assert await refused_status(http, served, {"Origin": served.origin}) == 401
            cookie, _ = await log_in(http, served)
            refusals = {
                "another site": {"Origin": "http://evil.example"},
                "same host, other port": {"Origin": "http://127.0.0.1:1"},
                "https, same host": {"Origin": f"https://127.0.0.1:{served.port}"},
                "a null origin": {"Origin": "null"},
                "no origin": {},
            }
            for what, origin in refusals.items():
                assert await refused_status(http, served, {"Cookie": cookie} | origin) == 403, what
            ws = await open_console(http, served, cookie, served.origin)
            try:
                screen = await screen_until(ws, QUEUE_HEADER)
            finally:
                await ws.close()
            assert "All open" in screen
    assert served.wait_logged(f"Origin 'http://evil.example', not this server's {served.origin}")
    assert "Origin missing, not this server's" in served.logged()


async def test_the_session_limit_refuses_the_next_console_until_one_closes(desk, tmp_path):
    with serving(desk, "--token-file", str(token_file(tmp_path)), "--max-sessions", "2") as served:
        async with no_redirects() as http:
            cookie, _ = await log_in(http, served)
            first = await open_console(http, served, cookie, served.origin)
            second = await open_console(http, served, cookie, served.origin)
            await screen_until(first, QUEUE_HEADER)
            await screen_until(second, QUEUE_HEADER)

            headers = {"Cookie": cookie, "Origin": served.origin}
            assert await refused_status(http, served, headers) == 503
            async with http.get(f"{served.url}/", headers={"Cookie": cookie}) as response:
                assert response.status == 503
                assert "Too many sessions" in await response.text()
                assert "--max-sessions 2" in await response.text()

            await first.close()
            await wait_for_a_free_slot(http, served, cookie)
            third = await open_console(http, served, cookie, served.origin)
            await screen_until(third, QUEUE_HEADER)
            assert await refused_status(http, served, headers) == 503
            await second.close()
            await third.close()


async def wait_for_a_free_slot(http: aiohttp.ClientSession, served: Served, cookie: str) -> None:
    """Until the page answers 200 again, not 503: the server saw the socket close and stopped its console."""
    deadline = time.monotonic() + 20
    while True:
        async with http.get(f"{served.url}/", headers={"Cookie": cookie}) as response:
            if response.status == 200:
                return
            assert response.status == 503
        assert time.monotonic() < deadline, "the closed session never freed its slot"
        await asyncio.sleep(0.1)


async def closed(ws: aiohttp.ClientWebSocketResponse, seconds: float = 20) -> aiohttp.WSMsgType:
    """How the console's socket ends (whatever it draws on the way).

    One deadline for the whole wait: ``receive(timeout=...)`` starts over at each of the server's pings.
    """
    async with asyncio.timeout(seconds):
        message = await ws.receive()
        while message.type == aiohttp.WSMsgType.BINARY:
            message = await ws.receive()
    return message.type


async def test_a_console_quit_by_its_user_frees_its_slot(desk, tmp_path):
    with serving(desk, "--token-file", str(token_file(tmp_path)), "--max-sessions", "1") as served:
        async with no_redirects() as http:
            cookie, _ = await log_in(http, served)
            ws = await open_console(http, served, cookie, served.origin)
            await screen_until(ws, QUEUE_HEADER)
            async with http.get(f"{served.url}/", headers={"Cookie": cookie}) as response:
                assert response.status == 503  # the one slot is taken
            await ws.send_json(["stdin", "\x11"])  # Ctrl+Q in the console
            assert await closed(ws) in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            await wait_for_a_free_slot(http, served, cookie)


async def test_a_console_that_cannot_start_closes_its_socket_and_frees_its_slot(desk, tmp_path):
    with serving(desk, "--token-file", str(token_file(tmp_path)), "--max-sessions", "1") as served:
        # Deactivated after the server started: each console checks its login again, and refuses.
        with sqlite3.connect(make_url(desk).database) as conn:
            conn.execute("UPDATE users SET active = 0 WHERE login = ?", (OS_LOGIN,))
        async with no_redirects() as http:
            cookie, _ = await log_in(http, served)
            ws = await open_console(http, served, cookie, served.origin)
            assert await closed(ws) in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            await wait_for_a_free_slot(http, served, cookie)
    assert f"The login {OS_LOGIN!r} is not a user of this service desk" in served.printed()


async def test_stopping_the_server_closes_its_consoles(desk, tmp_path):
    with serving(desk, "--token-file", str(token_file(tmp_path))) as served:
        async with no_redirects() as http:
            cookie, _ = await log_in(http, served)
            ws = await open_console(http, served, cookie, served.origin)
            await screen_until(ws, QUEUE_HEADER)
            consoles = served.descendants()
            started = time.monotonic()
            served.proc.send_signal(signal.SIGINT)  # Ctrl+C
            assert await closed(ws) in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1001  # going away
            assert served.proc.wait(timeout=15) == 0
            assert time.monotonic() - started < 20  # not the 30 s the server gives a stuck socket
    assert consoles
    for pid in consoles:
        assert not Path(f"/proc/{pid}").exists() or " Z " in Path(f"/proc/{pid}/stat").read_text(), pid


# --------------------------------------------------------------------------- where browsers reach it


async def test_on_all_addresses_the_page_uses_the_host_the_browser_used(desk, tmp_path):
    with serving(desk, "--token-file", str(token_file(tmp_path)), "--host", "0.0.0.0") as served:
        assert f"http://127.0.0.1:{served.port}/?token=TOKEN" in served.printed()
        assert "warning: plain http beyond this host" in served.printed()
        host = f"desk-host.example:{served.port}"
        async with no_redirects() as http:
            cookie, location = await log_in(http, served, host=host)
            assert location == f"http://{host}/"
            async with http.get(f"{served.url}/", headers={"Cookie": cookie, "Host": host}) as response:
                assert response.status == 200
                page = await response.text()
            assert f'data-session-websocket-url="ws://{host}/ws"' in page
            assert f"http://{host}/static/js/textual.js" in page
            assert "0.0.0.0" not in page

            # The browser's origin is the host it used; the listening address is no origin of the server's.
            for origin in (f"http://0.0.0.0:{served.port}", served.origin):
                status = await refused_status(
                    http, served, {"Cookie": cookie, "Host": host, "Origin": origin}
                )
                assert status == 403, origin
            ws = await open_console(http, served, cookie, f"http://{host}", host=host)
            await ws.close()

            async with http.get(
                f"{served.url}/", headers={"Cookie": cookie, "Host": 'x"><script>'}
            ) as response:
                assert response.status == 400  # a Host that is no host name never reaches the page


async def test_behind_a_proxy_the_page_and_the_origin_are_the_public_urls(desk, tmp_path):
    public = "https://Desk.Example.com/itsm"
    with serving(desk, "--token-file", str(token_file(tmp_path)), "--public-url", public) as served:
        assert "open https://desk.example.com/itsm/?token=TOKEN" in served.printed()
        assert "warning" not in served.printed()  # https in front: nothing in clear beyond the proxy
        async with no_redirects() as http:
            async with http.get(f"{served.url}/?token={TOKEN}", allow_redirects=False) as response:
                assert response.status == 303
                assert response.headers["Location"] == "https://desk.example.com/itsm/"
                morsel = next(iter(SimpleCookie(response.headers["Set-Cookie"]).values()))
                assert morsel["secure"] is True
                assert morsel["path"] == "/itsm/"
                cookie = f"{morsel.key}={morsel.value}"
            async with http.get(f"{served.url}/", headers={"Cookie": cookie}) as response:
                page = await response.text()
            assert 'data-session-websocket-url="wss://desk.example.com/itsm/ws"' in page
            assert "https://desk.example.com/itsm/static/js/textual.js" in page
            assert "127.0.0.1" not in page

            for origin in (served.origin, "http://desk.example.com", "https://desk.example.com:8443"):
                assert await refused_status(http, served, {"Cookie": cookie, "Origin": origin}) == 403, origin
            ws = await open_console(http, served, cookie, "https://desk.example.com")
            await screen_until(ws, QUEUE_HEADER)
            await ws.close()


# --------------------------------------------------------------------------- no secret on a command line


async def test_the_consoles_get_no_password_and_no_token_on_their_command_line(empty_pg_url, tmp_path):
    password = "Pa55-word-for-serve"
    url = make_url(empty_pg_url).set(password=password).render_as_string(hide_password=False)
    make_desk_user(url)
    # The worst case: the person serving put the URL on their own command line.
    with serving(url, "--token-file", str(token_file(tmp_path))) as served:
        assert password in Path(f"/proc/{served.proc.pid}/cmdline").read_text()
        async with no_redirects() as http:
            cookie, _ = await log_in(http, served)
            ws = await open_console(http, served, cookie, served.origin)
            screen = await screen_until(ws, QUEUE_HEADER)
            assert "postgresql" in screen  # that console works on the PostgreSQL database
            children = served.descendants()
            assert children, "no console process"
            command_lines = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children}
            environments = {pid: Path(f"/proc/{pid}/environ").read_bytes() for pid in children}
            await ws.close()
    assert any(b"itsm_tui.cli" in line for line in command_lines.values())
    for pid, line in command_lines.items():
        assert password.encode() not in line, (pid, line)
        assert TOKEN.encode() not in line, (pid, line)
        assert TOKEN.encode() not in environments[pid]
    # The URL travels in the environment, which only the same user (and root) can read.
    assert any(b"ITSM_DB_URL=" in env and password.encode() in env for env in environments.values())


async def test_the_consoles_get_the_sqlite_file_through_the_environment(desk, tmp_path):
    with serving(desk, "--token-file", str(token_file(tmp_path))) as served:
        async with no_redirects() as http:
            cookie, _ = await log_in(http, served)
            ws = await open_console(http, served, cookie, served.origin)
            await screen_until(ws, QUEUE_HEADER)
            lines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in served.descendants()]
            await ws.close()
    assert lines
    path = make_url(desk).database
    assert path and not any(path.encode() in line or b"--db" in line for line in lines)


# --------------------------------------------------------------------------- refusals at start


def test_serve_refuses_a_login_that_is_no_desk_user(sqlite_url, capsys):
    from itsm_tui.cli import main

    make_desk_user(sqlite_url, login="somebody")
    assert main(["serve", "--db", sqlite_url, "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"itsm serve runs every browser console as {OS_LOGIN}:" in err
    assert f"itsm user add {OS_LOGIN}" in err


def test_serve_refuses_an_unusable_database(tmp_path, capsys):
    from itsm_tui.cli import main

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.commit()
    assert main(["serve", "--db", str(other), "--port", "1"]) == 2
    assert "no itsm schema" in capsys.readouterr().err


def test_serve_refuses_a_token_file_others_can_read(desk, tmp_path, capsys):
    from itsm_tui.cli import main

    path = token_file(tmp_path)
    path.chmod(0o640)
    assert main(["serve", "--db", desk, "--token-file", str(path), "--port", "1"]) == 2
    err = capsys.readouterr().err
    told = f"the token file {path} is open to others (mode 0640); make it private: chmod 600 {path}"
    assert err == f"itsm: error: {told}\n"

    weak = token_file(tmp_path, "short")
    assert main(["serve", "--db", desk, "--token-file", str(weak), "--port", "1"]) == 2
    assert "at least 32 letters" in capsys.readouterr().err


def test_serve_refuses_a_public_url_that_is_not_one(desk, capsys):
    from itsm_tui.cli import main

    for bad in ("desk.example.com/itsm", "ftp://desk.example.com/", "https://desk.example.com/?a=b"):
        assert main(["serve", "--db", desk, "--public-url", bad, "--port", "1"]) == 2, bad
        assert "--public-url" in capsys.readouterr().err


async def test_a_missing_token_file_is_made_private_with_a_new_token(desk, tmp_path):
    path = tmp_path / "made" / "token"
    path.parent.mkdir(mode=0o700)
    with serving(desk, "--token-file", str(path)) as served:
        assert f"a new token was written to {path}" in served.printed()
        token = path.read_text().strip()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert len(token) == 43
        login = f"{served.url}/?token={token}"
        async with no_redirects() as http, http.get(login, allow_redirects=False) as response:
            assert response.status == 303
    assert token not in served.printed() + served.logged()
    with serving(desk, "--token-file", str(path)) as served:  # the next start reads the same token
        assert f"the token is in {path}" in served.printed()
        assert path.read_text().strip() == token


def test_a_taken_port_is_one_line(desk):
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "itsm_tui.cli", "serve", "--db", desk, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stdout == ""  # no address printed for a server that never listened
    assert done.stderr.startswith(f"itsm: error: cannot listen on 127.0.0.1 port {port}: ")
    assert "address already in use" in done.stderr.lower()
    assert done.stderr.count("\n") == 1
