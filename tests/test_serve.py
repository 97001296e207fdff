"""`itsm serve` serves the console to a browser."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def page_of(proc: subprocess.Popen, port: int, seconds: float = 30) -> str | None:
    """The page the server started as ``proc`` answers on ``port``; None if it stopped first."""
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                assert response.status == 200
                page = response.read().decode()
        except OSError:
            time.sleep(0.2)  # not listening yet: the process is still starting
            continue
        return page if proc.poll() is None else None  # an answer from another process does not count
    return None


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=10)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[1]


def test_serve_answers_with_the_terminal_page(sqlite_url):
    # A free port can be taken by a test running in parallel before the server binds it: then another one.
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "itsm_tui.cli", "serve", "--db", sqlite_url, "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        try:
            page = page_of(proc, port)
        finally:
            errors = stop(proc)
        if page is not None or "address already in use" not in errors.lower():
            break
    assert page is not None, errors
    assert "textual.js" in page
    assert f"127.0.0.1:{port}" in page


def test_serve_refuses_an_unusable_database(tmp_path, capsys):
    from itsm_tui.cli import main

    other = tmp_path / "other.db"
    import sqlite3

    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.commit()
    assert main(["serve", "--db", str(other), "--port", str(free_port())]) == 2
    assert "no itsm schema" in capsys.readouterr().err
