"""The parts of `itsm serve`'s web layer that need no server: public URLs, the Host rule, the token file,
the login cookie and the throttle on wrong tokens (with a clock the test moves)."""

from __future__ import annotations

import os
import stat

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from itsm_tui.cli.desk import CliError
from itsm_tui.web import Login, PublicUrl, Throttle, read_token_file, request_base

TOKEN = "abcdefghijklmnopqrstuvwxyz_0123456789-ABCDEFG"  # 45 URL-safe characters


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- public URLs and Host


def test_a_public_url_gives_the_pages_addresses_and_its_origin():
    public = PublicUrl.parse("https://Desk.Example.com/itsm")
    assert public.origin == "https://desk.example.com"
    assert public.path == "/itsm/"
    assert public.secure
    assert public.url("/") == "https://desk.example.com/itsm/"
    assert public.url("/static/") == "https://desk.example.com/itsm/static/"
    assert public.websocket_url("/ws") == "wss://desk.example.com/itsm/ws"


@pytest.mark.parametrize(
    ("text", "origin", "websocket"),
    [
        ("https://desk.example.com:443/", "https://desk.example.com", "wss://desk.example.com/ws"),
        ("http://desk.example.com:80", "http://desk.example.com", "ws://desk.example.com/ws"),
        ("http://desk:8080", "http://desk:8080", "ws://desk:8080/ws"),
        (
            "https://desk.example.com:8443/a/b/",
            "https://desk.example.com:8443",
            "wss://desk.example.com:8443/a/b/ws",
        ),
        ("http://[::1]:8000/x", "http://[::1]:8000", "ws://[::1]:8000/x/ws"),
    ],
)
def test_a_public_urls_origin_is_what_browsers_send(text, origin, websocket):
    public = PublicUrl.parse(text)
    assert public.origin == origin  # no default port, no path: the Origin header's form
    assert public.websocket_url("/ws") == websocket


@pytest.mark.parametrize(
    "text",
    [
        "desk.example.com/itsm",
        "ftp://desk.example.com/",
        "https:///itsm/",
        "https://user:secret@desk.example.com/",
        "https://desk.example.com/?a=b",
        "https://desk.example.com/#top",
        "https://desk.example.com:99999/",
        'https://desk.example.com/a"><script>/',
    ],
)
def test_a_public_url_that_is_not_one_is_refused(text):
    with pytest.raises(CliError, match="--public-url"):
        PublicUrl.parse(text)


def test_without_a_public_url_the_page_uses_the_host_the_browser_sent():
    request = make_mocked_request("GET", "/", headers={"Host": "Desk-Host.example:8000"})
    base = request_base(request, None)
    assert base.origin == "http://desk-host.example:8000"
    assert base.websocket_url("/ws") == "ws://desk-host.example:8000/ws"
    ipv6 = make_mocked_request("GET", "/", headers={"Host": "[fe80::1]:8000"})
    assert request_base(ipv6, None).origin == "http://[fe80::1]:8000"
    public = PublicUrl.parse("https://desk.example.com/itsm/")
    assert request_base(request, public) is public  # behind a proxy the Host may be anything


@pytest.mark.parametrize("host", ["", 'x"><script>alert(1)</script>', "a b", "desk:80:80", "-desk", "desk/x"])
def test_a_host_header_that_is_no_host_never_reaches_the_page(host):
    request = make_mocked_request("GET", "/", headers={"Host": host})
    with pytest.raises(web.HTTPBadRequest):
        request_base(request, None)


# --------------------------------------------------------------------------- the token file


def test_a_missing_token_file_is_made_private(tmp_path):
    path = tmp_path / "token"
    token, made = read_token_file(path)
    assert made
    assert len(token) == 43 and token.replace("-", "").replace("_", "").isalnum()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text() == token + "\n"
    assert read_token_file(path) == (token, False)


def test_a_token_file_is_read_with_its_blank_space_trimmed(tmp_path):
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n\n")
    path.chmod(0o400)
    assert read_token_file(path) == (TOKEN, False)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        (0o644, "is open to others (mode 0644); make it private: chmod 600"),
        (0o620, "is open to others (mode 0620)"),
        (0o601, "is open to others (mode 0601)"),
    ],
)
def test_a_token_file_others_may_read_or_write_is_refused(tmp_path, mode, message):
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(mode)
    with pytest.raises(CliError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_token_file(path)


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_a_token_file_of_another_user_is_refused(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    with pytest.raises(CliError, match="belongs to uid 65534, not to you"):
        read_token_file(path)


@pytest.mark.parametrize(
    "content", ["", "short-token", "a token with spaces in it, long enough to pass", "é" * 40]
)
def test_a_token_file_without_a_usable_token_is_refused(tmp_path, content):
    path = tmp_path / "token"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(CliError, match="must hold one token of at least 32"):
        read_token_file(path)


def test_a_token_file_that_is_no_file_is_refused(tmp_path):
    with pytest.raises(CliError, match="token file"):
        read_token_file(tmp_path)
    with pytest.raises(CliError, match="cannot create the token file"):
        read_token_file(tmp_path / "missing-folder" / "token")


# --------------------------------------------------------------------------- the login cookie


def test_the_token_is_compared_whole():
    login = Login(TOKEN)
    assert login.token_ok(TOKEN)
    for wrong in ("", TOKEN[:-1], TOKEN + "A", TOKEN.upper(), " " + TOKEN, "é" + TOKEN[1:]):
        assert not login.token_ok(wrong), wrong


def test_a_login_cookie_lasts_twelve_hours_on_the_servers_clock():
    clock = Clock(1_000_000.0)
    login = Login(TOKEN, clock=clock)
    cookie = login.new_cookie()
    assert cookie.startswith("1000000.")
    assert TOKEN not in cookie
    assert login.cookie_ok(cookie)
    clock.now += 12 * 3600
    assert login.cookie_ok(cookie)
    clock.now += 1
    assert not login.cookie_ok(cookie)
    clock.now = 1_000_000.0 - 60  # a clock stepped back a minute still knows it
    assert login.cookie_ok(cookie)
    clock.now = 1_000_000.0 - 61
    assert not login.cookie_ok(cookie)


def test_a_login_cookie_is_good_only_for_its_token_and_unaltered():
    clock = Clock(1_000_000.0)
    login = Login(TOKEN, clock=clock)
    cookie = login.new_cookie()
    assert not Login(TOKEN[::-1], clock=clock).cookie_ok(cookie)  # a new token logs everyone out
    issued, _, mac = cookie.partition(".")
    for forged in (
        f"1000001.{mac}",  # a later issue, to last longer
        f"{issued}.{mac[:-1]}",
        f"{issued}.{mac.upper()}",
        f"{issued}.",
        issued,
        "",
        None,
        f"-5.{mac}",
        f"{'9' * 40}.{mac}",
        f"{issued}.{mac}é",
    ):
        assert not login.cookie_ok(forged), forged


# --------------------------------------------------------------------------- the throttle


def test_five_wrong_tokens_in_a_minute_stop_the_checks_from_that_address():
    clock = Clock(100.0)
    throttle = Throttle(per_client=5, overall=50, window=60, clock=clock)
    for count in range(1, 6):
        assert throttle.wait("10.0.0.1") is None
        assert throttle.failed("10.0.0.1") == count
        clock.now += 1
    # Failures at 100..104; now 105: the oldest stops counting at 160, 55 seconds from now.
    assert throttle.wait("10.0.0.1") == 55
    assert throttle.wait("10.0.0.2") is None  # another address may still try
    clock.now = 160
    assert throttle.wait("10.0.0.1") is None
    assert throttle.failed("10.0.0.1") == 5  # 101..104 and this one
    assert throttle.wait("10.0.0.1") == 1  # 101 + 60 - 160


def test_wrong_tokens_from_many_addresses_stop_all_checks():
    clock = Clock(0.0)
    throttle = Throttle(per_client=5, overall=3, window=60, clock=clock)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        throttle.failed(address)
        clock.now += 10
    assert throttle.wait("10.0.0.4") == 30  # 0 + 60 - 30
    clock.now = 61
    assert throttle.wait("10.0.0.4") is None


def test_the_throttle_forgets_what_the_window_left_behind():
    clock = Clock(0.0)
    throttle = Throttle(clock=clock)
    for number in range(40):
        throttle.failed(f"10.0.0.{number}")
    clock.now = 61
    throttle.wait("10.0.0.1")
    assert throttle._by_client == {} and not throttle._all
