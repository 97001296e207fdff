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


def test_serve_answers_with_the_terminal_page(sqlite_url):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "itsm_tui.cli", "serve", "--db", sqlite_url, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        page = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode()
                    assert response.status == 200
                break
            except OSError:
                time.sleep(0.2)
        assert "textual.js" in page
        assert f"127.0.0.1:{port}" in page
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_serve_refuses_an_unusable_database(tmp_path, capsys):
    from itsm_tui.cli import main

    other = tmp_path / "other.db"
    import sqlite3

    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.commit()
    assert main(["serve", "--db", str(other), "--port", str(free_port())]) == 2
    assert "no itsm schema" in capsys.readouterr().err
