"""The console in a web browser: textual-serve's server behind a login, an Origin check and a session limit.

Every browser session is a console process that this server starts, so it runs as the operating-system user
who started ``itsm serve`` (identity is the process's real uid). Whoever can open a session *is* that person
on the service desk; hence a secret token, known only to the terminal (or the private file) that started the
server, which the browser trades once for a session cookie:

- ``GET /?token=...`` with the right token sets an HttpOnly, SameSite=Strict cookie (Secure behind https) and
  redirects to the clean URL, so the token leaves the address bar and the history; a wrong token is logged
  and, past five a minute from one address, no token is checked at all for a while.
- Every other request needs the cookie (a plain 401 page says how to log in); the WebSocket that drives a
  console also needs the server's own Origin, so a page elsewhere cannot drive a console with the cookie the
  browser would send along.
- At most ``max_sessions`` consoles run at once; the next one gets a plain "too many sessions" answer.
- The consoles get the database URL in their environment, never on their command line (``ps`` shows every
  process's command line to every user), and never see the token.

textual-serve builds the page from the ``public_url`` it is given once; here the page's asset and WebSocket
URLs come from ``--public-url`` (behind a proxy) or else from the Host the browser used, so a server listening
on ``0.0.0.0`` hands out an address the browser can reach.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import ipaddress
import logging
import os
import re
import secrets
import signal
import socket
import stat
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp_jinja2
from aiohttp import WSCloseCode, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler
from aiohttp.web_request import BaseRequest
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from itsm_tui.cli.desk import CliError
from itsm_tui.text import strip_control

log = logging.getLogger("itsm.serve")

TOKEN_BYTES = 32
"""A new token's randomness: 32 bytes, 43 URL-safe characters."""
MIN_TOKEN_LENGTH = 32
"""A token file's token must be at least this long (32 URL-safe characters are 192 bits)."""
SESSION_SECONDS = 12 * 3600
"""How long a login cookie is good for: a long shift. The server checks it, not only the browser."""
DEFAULT_MAX_SESSIONS = 4

_TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")  # what token_urlsafe gives, and what a URL carries as is
_HOST_HEADER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?")
_URL_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")
_TOKEN_IN_QUERY = re.compile(r"(?<=[?&])token=[^&]*")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


# --------------------------------------------------------------------------- where browsers reach us


@dataclass(frozen=True)
class PublicUrl:
    """The address browsers use: scheme, host (with a port that is not the default) and a path ending in /."""

    scheme: str
    netloc: str
    path: str = "/"

    @classmethod
    def parse(cls, text: str) -> PublicUrl:
        """``--public-url``: an http(s) URL with a host and maybe a path; no user, query or fragment."""
        try:
            parts = urlsplit(text.strip())
            port = parts.port
        except ValueError as exc:
            raise CliError(
                f"--public-url {text!r} is not a URL ({exc}); e.g. https://desk.example.com/itsm/"
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"--public-url {text!r} needs http:// or https:// and a host name")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise CliError(f"--public-url {text!r} may have a path but no user, query or fragment")
        path = parts.path or "/"
        if not _URL_PATH.fullmatch(path):
            raise CliError(f"--public-url {text!r}: percent-encode the path's special characters")
        host = parts.hostname.lower()
        if ":" in host:
            host = f"[{host}]"
        default = 443 if scheme == "https" else 80
        netloc = host if port in (None, default) else f"{host}:{port}"
        return cls(scheme, netloc, path if path.endswith("/") else path + "/")

    @property
    def origin(self) -> str:
        """What a browser sends as ``Origin`` from a page under this URL (no default port, no path)."""
        return f"{self.scheme}://{self.netloc}"

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    def url(self, route_path: str) -> str:
        """The public address of one of the server's own paths (``/ws``, ``/static/``)."""
        return f"{self.origin}{self.path}{route_path.lstrip('/')}"

    def websocket_url(self, route_path: str) -> str:
        return ("wss" if self.secure else "ws") + self.url(route_path).removeprefix(self.scheme)


def request_base(request: web.Request, public: PublicUrl | None) -> PublicUrl:
    """``public`` when there is one, else the address the browser used (its Host header), as plain http.

    A Host that is not a host name or address (with a port) is refused: it would go into the page.
    """
    if public is not None:
        return public
    host = request.headers.get("Host", "")
    if not _HOST_HEADER.fullmatch(host):
        raise web.HTTPBadRequest(text="bad Host header")
    return PublicUrl("http", host.lower())


# --------------------------------------------------------------------------- the token


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def read_token_file(path: Path) -> tuple[str, bool]:
    """The token in ``path`` and whether it was just made: a missing file is created (0600) with a new one.

    An existing file must be a regular file of this user's that nobody else may read or write, holding one
    token of URL-safe characters, at least :data:`MIN_TOKEN_LENGTH` long.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise CliError(f"cannot create the token file {path}: {exc.strerror}") from None
    else:
        token = new_token()
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token + "\n")
        return token, True
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            raw = handle.read(4096)
    except OSError as exc:
        raise CliError(f"cannot read the token file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CliError(f"the token file {path} is not a regular file")
    if info.st_uid != os.getuid():
        raise CliError(
            f"the token file {path} belongs to uid {info.st_uid}, not to you; use a file of your own"
        )
    if info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        raise CliError(
            f"the token file {path} is open to others (mode {mode:04o}); make it private: chmod 600 {path}"
        )
    token = raw.decode("ascii", "replace").strip()
    if not _TOKEN_CHARACTERS.fullmatch(token) or len(token) < MIN_TOKEN_LENGTH:
        raise CliError(
            f"the token file {path} must hold one token of at least {MIN_TOKEN_LENGTH} letters, digits, "
            f"- or _; make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > {path}"
        )
    return token, False


class Login:
    """The token, and the session cookie signed with it.

    The cookie is ``ISSUED.MAC``: the time it was issued and an HMAC of that time under the token, so it
    proves a login with this token without being the token, expires on the server's clock after
    :data:`SESSION_SECONDS`, and stops working when the token changes.
    """

    def __init__(self, token: str, *, clock: Callable[[], float] = time.time) -> None:
        self._key = token.encode("ascii")
        self._clock = clock

    def token_ok(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode("utf-8", "backslashreplace"), self._key)

    def _mac(self, issued: int) -> str:
        return hmac.new(self._key, f"itsm serve login {issued}".encode(), hashlib.sha256).hexdigest()

    def new_cookie(self) -> str:
        issued = int(self._clock())
        return f"{issued}.{self._mac(issued)}"

    def cookie_ok(self, value: str | None) -> bool:
        issued_text, _, mac = (value or "").partition(".")
        if not issued_text.isdigit() or len(issued_text) > 12:
            return False
        issued = int(issued_text)
        age = self._clock() - issued
        if not -60 <= age <= SESSION_SECONDS:  # a minute's grace for a clock stepped back
            return False
        return hmac.compare_digest(mac.encode("ascii", "replace"), self._mac(issued).encode("ascii"))


class Throttle:
    """Wrong tokens: past ``per_client`` from one address, or ``overall`` from all of them, within ``window``
    seconds, no token is checked (not even the right one) until the oldest of those guesses is that old.

    A 43-character token cannot be guessed anyway; the throttle keeps a guesser from even trying at speed,
    and the log says someone is. Behind a proxy every guess comes from the proxy's address, so the limit is
    one for everybody: a guesser then locks out new logins for a minute, not sessions already logged in.
    The counts stay small: once ``overall`` is reached nothing is recorded until the window moves on.
    """

    def __init__(
        self,
        per_client: int = 5,
        overall: int = 50,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_client, self.overall, self.window, self._clock = per_client, overall, window, clock
        self._all: deque[float] = deque()
        self._by_client: dict[str, deque[float]] = {}

    def _forget_old(self, now: float) -> None:
        horizon = now - self.window
        while self._all and self._all[0] <= horizon:
            self._all.popleft()
        for client, times in list(self._by_client.items()):
            while times and times[0] <= horizon:
                times.popleft()
            if not times:
                del self._by_client[client]

    def wait(self, client: str) -> float | None:
        """Seconds until a token from ``client`` may be checked; None if it may be now."""
        now = self._clock()
        self._forget_old(now)
        waits = [
            times[0] + self.window - now
            for times, limit in ((self._all, self.overall), (self._by_client.get(client), self.per_client))
            if times is not None and len(times) >= limit
        ]
        return max(waits) if waits else None

    def failed(self, client: str) -> int:
        """Record a wrong token from ``client``; how many it sent within the window."""
        now = self._clock()
        self._all.append(now)
        times = self._by_client.setdefault(client, deque())
        times.append(now)
        return len(times)


# --------------------------------------------------------------------------- answers


def page(status: int, title: str, *paragraphs: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A plain page: no script, no asset, nothing from the request in it."""
    body = "".join(f"<p>{html.escape(text)}</p>" for text in paragraphs)
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        '<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">'
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(status=status, text=document, content_type="text/html", headers=headers)


LOGIN_NEEDED = (
    "This service-desk console needs a login. Open the address that itsm serve printed on the terminal "
    "that started it (it ends in ?token=...); a server started with --token-file takes the token in that "
    "file instead.",
    "The console runs as the person who started the server, so the token is theirs: ask them, or start "
    "your own server with itsm serve.",
)


def _client(request: BaseRequest) -> str:
    return request.remote or "unknown address"


def _shown(text: str) -> str:
    """Someone else's text (a header, a path) made safe for the log: one line, no control characters."""
    return strip_control(text, single_line=True)[:200]


class RedactedAccessLog(AbstractAccessLogger):
    """One line per request, with any token in the query replaced, so the log never holds it."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = _TOKEN_IN_QUERY.sub("token=(hidden)", request.path_qs)
        self.logger.info(
            '%s "%s %s" %s %.3fs', _client(request), request.method, _shown(path), response.status, time
        )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Not framed by another site, no Referer (the first URL holds the token), no caching of the pages."""
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")


# --------------------------------------------------------------------------- the server


class ConsoleProcess(AppService):
    """textual-serve's console process, with more in its environment, whose socket closes when it ends.

    The environment is the server's plus ``environment``: how the database URL reaches the console without
    being on its command line. textual-serve closes the socket only when the app says it exits; a console
    that could not start (an unknown login, a database gone) would leave the browser before a blank
    terminal, holding a session slot.
    """

    def __init__(self, command: str, *, environment: Mapping[str, str], **options: Any) -> None:
        super().__init__(command, **options)
        self.environment = dict(environment)

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        return super()._build_environment(width, height) | self.environment

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            await self.remote_close()


_FONT_LINK = re.compile(r'<link[^>]*href="https://fonts\.googleapis\.com/[^"]*"[^>]*/?>', re.S)
_LOCAL_FONT = """<style>
      @font-face {{ font-family: "Roboto Mono"; src: url("{{{{ config.static.url }}}}fonts/{name}"); }}
    </style>"""


def _local_templates(shipped: Path) -> Path:
    """textual-serve's page template with its one outside address, a font from Google's servers, replaced
    by the same font from the server's own static files: a browser that opens the console asks nothing
    of a third party (which would learn who uses the desk and when, and which a closed network cannot
    reach). Written to a folder of this process's, removed when it ends."""
    import atexit
    import shutil
    import tempfile

    page = (shipped / "app_index.html").read_text(encoding="utf-8")
    fonts = sorted(p.name for p in (shipped.parent / "static" / "fonts").glob("RobotoMono-Variable*.ttf"))
    if not fonts or not _FONT_LINK.search(page):
        log.warning("textual-serve's page template has changed: it is served as it is")
        return shipped
    folder = Path(tempfile.mkdtemp(prefix="itsm-serve-"))
    atexit.register(shutil.rmtree, folder, True)
    (folder / "app_index.html").write_text(
        _FONT_LINK.sub(_LOCAL_FONT.format(name=fonts[0]), page, count=1), encoding="utf-8"
    )
    return folder


class DeskServer(Server):
    """textual-serve's :class:`Server` with the login, the Origin check and the session limit in front.

    ``console_environment`` is added to each console's environment (the server's own, as textual-serve
    gives it): how the database URL reaches them without appearing on any command line.
    """

    def __init__(
        self,
        command: str,
        *,
        token: str,
        host: str = "127.0.0.1",
        port: int = 8000,
        public_url: PublicUrl | None = None,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        console_environment: Mapping[str, str] | None = None,
        identity: str = "",
        token_file: Path | None = None,
        token_is_new: bool = False,
        title: str = "itsm",
    ) -> None:
        super().__init__(command, host=host, port=port, title=title)
        self.templates_path = _local_templates(self.templates_path)
        self.public = public_url
        self.max_sessions = max_sessions
        self.console_environment = dict(console_environment or {})
        self.identity = identity
        self.token = token
        self.token_file = token_file
        self.token_is_new = token_is_new
        self.login = Login(token)
        self.throttle = Throttle()
        # Cookies ignore ports: two people serving on one host must not overwrite each other's login.
        self.cookie_name = f"itsm-login-{port}"
        self.open_sessions = 0
        """Consoles claimed and not yet closed: what the limit counts."""
        self.sessions: set[web.WebSocketResponse] = set()
        """The consoles' sockets, closed when the server stops."""

    # ----------------------------------------------------------------- running

    def initialize_logging(self) -> None:
        """Plain lines on stderr; no local variables in tracebacks (textual-serve's would show them)."""
        logging.basicConfig(
            level=logging.DEBUG if self.debug else logging.INFO,
            format="%(asctime)s %(name)s %(levelname)s: %(message)s",
            stream=sys.stderr,
        )

    def serve(self, debug: bool = False) -> None:
        """Listen until SIGINT or SIGTERM; ``OSError`` if the address cannot be had."""
        self.debug = debug
        self.initialize_logging()
        asyncio.run(self._run())

    async def _run(self) -> None:
        runner = web.AppRunner(
            await self._make_app(),
            handle_signals=False,
            access_log_class=RedactedAccessLog,
            shutdown_timeout=30,  # for a handler that is stuck: the consoles' sockets are closed at once
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
            stopping = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stopping.set)
            print(self.announcement(), flush=True)
            await stopping.wait()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)  # a second Ctrl+C does not wait for the shutdown
        finally:
            await runner.cleanup()

    def announcement(self) -> str:
        """What the terminal shows once the server listens: as whom, where, and how to log in."""
        if self.public is not None:
            addresses = [self.public.url("")]
        else:
            host = self.host if ":" not in self.host else f"[{self.host}]"
            if self.host in _WILDCARD_HOSTS:
                host = socket.gethostname()
            addresses = [f"http://{host}:{self.port}/"]
            if self.host in _WILDCARD_HOSTS:
                addresses.append(f"http://127.0.0.1:{self.port}/")
        lines = [
            f"itsm serve: each browser session is a console as {self.identity or 'you'}, "
            f"at most {self.max_sessions} at a time (Ctrl+C stops)"
        ]
        if self.token_file is None:
            lines += [f"open {address}?token={self.token}" for address in addresses]
        else:
            made = "a new token was written to" if self.token_is_new else "the token is in"
            lines += [f"{made} {self.token_file}"]
            lines += [
                f"open {address}?token=TOKEN (TOKEN: the content of that file)" for address in addresses
            ]
        if not self._private():
            lines.append(
                "warning: plain http beyond this host: the token and every keystroke cross the network "
                "unencrypted; put a TLS proxy in front and give its address with --public-url https://..."
            )
        return "\n".join(lines)

    def _private(self) -> bool:
        """Whether nothing travels in clear beyond this host: listening on loopback only, and https in
        front if there is a proxy (a proxy elsewhere would reach this server across the network)."""
        if self.public is not None and not self.public.secure:
            return False
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        app.on_response_prepare.append(_security_headers)
        return app

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: textual-serve's banner shows the command and an address that may be wrong."""

    async def on_shutdown(self, app: web.Application) -> None:
        """Close the consoles' sockets, so that stopping does not wait on them."""
        for websocket in list(self.sessions):
            if websocket.prepared:
                await websocket.close(code=WSCloseCode.GOING_AWAY, message=b"itsm serve stopped")

    # ----------------------------------------------------------------- the checks

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Login, Origin and capacity, before any of textual-serve's handlers runs."""
        base = request_base(request, self.public)
        route = request.match_info.route.name
        if request.method not in _SAFE_METHODS and not self._origin_ok(request, base):
            return self._foreign(request, base)
        if route == "index" and "token" in request.query:
            return self._log_in(request, base)
        if not self.login.cookie_ok(request.cookies.get(self.cookie_name)):
            return page(401, "Login needed", *LOGIN_NEEDED)
        if route == "websocket" and not self._origin_ok(request, base):
            return self._foreign(request, base)
        if route == "index" and self._full():
            return self._too_many()
        if route != "websocket":
            return await handler(request)
        if self._full():
            log.warning("refused a console for %s: %d sessions open", _client(request), self.open_sessions)
            return self._too_many()
        self.open_sessions += 1  # the check and the claim in one step: no await between them
        try:
            return await handler(request)  # returns when the console's socket has closed
        finally:
            self.open_sessions -= 1

    def _origin_ok(self, request: web.Request, base: PublicUrl) -> bool:
        origin = request.headers.get("Origin", "")
        return hmac.compare_digest(origin.lower().encode("utf-8", "replace"), base.origin.encode())

    def _foreign(self, request: web.Request, base: PublicUrl) -> web.Response:
        origin = request.headers.get("Origin")
        log.warning(
            "refused %s %s from %s: Origin %s, not this server's %s",
            request.method,
            _shown(request.path),
            _client(request),
            "missing" if origin is None else repr(_shown(origin)),
            base.origin,
        )
        return page(403, "Refused", f"This server only takes this from pages of {base.origin}.")

    def _log_in(self, request: web.Request, base: PublicUrl) -> web.Response:
        client = _client(request)
        wait = self.throttle.wait(client)
        if wait is not None:
            log.warning(
                "refused a token from %s: too many wrong tokens; the next is checked in %.0fs", client, wait
            )
            return page(
                429,
                "Too many wrong tokens",
                f"No token is checked for the next {wait:.0f} seconds. Copy the address from the terminal "
                "that started itsm serve.",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        if not self.login.token_ok(request.query["token"]):
            count = self.throttle.failed(client)
            log.warning("wrong token from %s (%d from there in the last minute)", client, count)
            return page(403, "Wrong token", "That token is not this server's.", *LOGIN_NEEDED)
        kept = [(key, value) for key, value in request.query.items() if key != "token"]
        location = base.url(request.path) + (f"?{urlencode(kept)}" if kept else "")
        response = web.HTTPSeeOther(location)
        response.set_cookie(
            self.cookie_name,
            self.login.new_cookie(),
            max_age=SESSION_SECONDS,
            path=base.path,
            secure=base.secure,
            httponly=True,
            samesite="Strict",
        )
        log.info("logged in a browser from %s", client)
        return response

    def _full(self) -> bool:
        return self.open_sessions >= self.max_sessions

    def _too_many(self) -> web.Response:
        return page(
            503,
            "Too many sessions",
            f"{self.open_sessions} consoles are open, as many as this server runs at once "
            f"(itsm serve --max-sessions {self.max_sessions}). Close one (Ctrl+Q in it, or its tab) "
            "and reload.",
            headers={"Retry-After": "10"},
        )

    # ----------------------------------------------------------------- textual-serve's handlers, adapted

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        """textual-serve's page, with its URLs on the address the browser uses (see :func:`request_base`)."""
        base = request_base(request, self.public)
        router = request.app.router
        return {
            "font_size": min(max(to_int(request.query.get("fontsize", "16"), 16), 6), 64),
            "app_websocket_url": base.websocket_url(str(router["websocket"].url_for())),
            "config": {
                "static": {"url": base.url(str(router["static"].url_for(filename="/")).rstrip("/") + "/")}
            },
            "application": {"name": self.title},
        }

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One console per socket (the session limit is :meth:`_guard`'s), ended when the socket closes."""
        websocket = web.WebSocketResponse(heartbeat=15)
        self.sessions.add(websocket)

        async def close() -> None:
            await websocket.close()

        console: ConsoleProcess | None = None
        try:
            await websocket.prepare(request)
            console = ConsoleProcess(
                self.command,
                environment=self.console_environment,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            width = min(max(to_int(request.query.get("width", "80"), 80), 10), 1000)
            height = min(max(to_int(request.query.get("height", "24"), 24), 5), 500)
            await console.start(width, height)
            log.info("console started for %s (%d open)", _client(request), self.open_sessions)
            await self._process_messages(websocket, console)
        except asyncio.CancelledError:
            if websocket.prepared:
                await websocket.close()
            raise
        except Exception:
            log.exception("the console for %s failed", _client(request))
        finally:
            if console is not None:
                await console.stop()
            self.sessions.discard(websocket)
            log.info("console closed for %s", _client(request))
        return websocket
