"""A private PostgreSQL server for the tests that must break one: stop it, start it again, give it its own
pg_hba.conf. Never the shared server of ``ITSM_TEST_PG_URL``, which every other test is using.

The server runs as the ``postgres`` operating-system user (``initdb`` refuses root), so these tests need
root, ``runuser`` and PostgreSQL's programs; :func:`postgres_bindir` says why not when they cannot run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def postgres_bindir() -> Path | str:
    """The folder of PostgreSQL's server programs, or why a private server cannot be made here."""
    if os.geteuid() != 0:
        return "needs root, to run a private PostgreSQL server as the postgres user"
    pg_config, runuser = shutil.which("pg_config"), shutil.which("runuser")
    if not (pg_config and runuser):
        return "needs pg_config and runuser"
    bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
    if not (bindir / "initdb").exists() or not (bindir / "pg_ctl").exists():
        return "needs PostgreSQL's initdb and pg_ctl"
    return bindir


def deployment_tools() -> tuple[Path, Path] | str:
    """The server's programs and a system Python like this one, or why the test cannot run here."""
    if os.geteuid() != 0:
        return "needs root, to make operating-system users and a private PostgreSQL server"
    pg_config, runuser, useradd = (shutil.which(n) for n in ("pg_config", "runuser", "useradd"))
    if not (pg_config and runuser and useradd):
        return "needs pg_config, runuser and useradd"
    bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
    python = Path("/usr/bin/python3")
    if not (bindir / "initdb").exists() or not python.exists():
        return "needs PostgreSQL's initdb and /usr/bin/python3"
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
    ).stdout.strip()
    if version != str(sys.version_info[:2]):
        return f"/usr/bin/python3 is {version}, not {sys.version_info[:2]} (this environment's packages)"
    return bindir, python


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateServer:
    """A throw-away PostgreSQL cluster in a temporary folder, on 127.0.0.1 at a port of its own, trusting
    every local connection (like the test server). Made by :func:`private_server`."""

    def __init__(self, bindir: Path, base: Path, port: int) -> None:
        self.bindir, self.base, self.port = bindir, base, port
        self.data, self.sock = base / "pgdata", base / "sock"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, program: str, *argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """One of the server's programs, as the postgres user, with a bare environment."""
        as_postgres = ["runuser", "-u", "postgres", "--", "env", "-i", "PATH=/usr/bin:/bin", "LANG=C.UTF-8"]
        result = subprocess.run(
            [*as_postgres, str(self.bindir / program), *map(str, argv)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.base,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{program} failed ({result.returncode}): {result.stdout}{result.stderr}")
        return result

    def init(self) -> None:
        for folder in (self.data, self.sock):
            folder.mkdir()
            shutil.chown(folder, "postgres")
        # No fsync and no locale: a test cluster made in a second, whose data lives as long as the test.
        self.run(
            "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "-N"
        )

    def start(self) -> None:
        """Start it (again) on its port; returns once it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='{self.sock}' "
            "-c fsync=off -c full_page_writes=off"
        )
        self.run("pg_ctl", "-D", self.data, "-l", self.data / "server.log", "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop it: ``fast`` ends every session politely, ``immediate`` kills them (a crash)."""
        self.run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return self.run("pg_ctl", "-D", self.data, "status", check=False).returncode == 0

    def log(self) -> str:
        path = self.data / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def private_server(bindir: Path) -> Iterator[PrivateServer]:
    """A private server, started; stopped and deleted at the end, whatever state the test left it in."""
    base = Path(tempfile.mkdtemp(prefix="itsm-pg-", dir="/tmp"))
    base.chmod(0o755)  # the postgres user walks into it
    server = PrivateServer(bindir, base, free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        if (server.data / "PG_VERSION").exists() and server.running():
            server.run("pg_ctl", "-D", server.data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)
