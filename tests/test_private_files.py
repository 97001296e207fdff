"""The SQLite database is private by default: a folder made for it is 0700, a file made for it 0600, and its
-wal and -shm journals follow the file, whatever the umask; a folder or file that exists keeps its mode.

Run in a child process with the umask cleared (0000: every bit allowed), the worst case a login may have.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

# Creates the schema as `itsm db upgrade` does, then writes through a second connection held open, so that
# the write-ahead log and the shared-memory file exist while their modes are read; prints them as JSON.
CHILD = """
import json, os, sqlite3, stat, sys
os.umask(0)
from itsm_tui.cli import main
path = sys.argv[1]
argv = ["db", "upgrade"] + (["--db", path] if path != "-" else [])
code = main(argv)
if path == "-":
    from itsm_tui.config import default_database_url
    path = default_database_url().removeprefix("sqlite:///")
conn = sqlite3.connect(path)
conn.execute("CREATE TABLE scratch (x)")
conn.execute("INSERT INTO scratch VALUES (1)")
conn.commit()
modes = {
    name: stat.S_IMODE(os.stat(path + suffix).st_mode)
    for name, suffix in (("file", ""), ("wal", "-wal"), ("shm", "-shm"))
}
conn.close()
print(json.dumps({"code": code, "path": path, **modes}))
"""


def child(target: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, target],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_folders_are_private_whatever_the_umask(tmp_path) -> None:
    there = tmp_path / "there"
    there.mkdir()
    os.chmod(there, 0o755)
    result = child(str(there / "one" / "two" / "desk.db"))
    assert result["code"] == 0
    assert (result["file"], result["wal"], result["shm"]) == (0o600, 0o600, 0o600)
    assert (mode(there / "one"), mode(there / "one" / "two")) == (0o700, 0o700)
    assert mode(there) == 0o755  # there before: left as it was


def test_the_default_database_lives_in_a_private_folder(tmp_path) -> None:
    data = tmp_path / "data"  # the user's data directory, not there yet
    result = child("-", {"XDG_DATA_HOME": str(data)})
    assert result["path"] == str(data / "itsm-tui" / "itsm.db")
    assert (result["file"], result["wal"], result["shm"]) == (0o600, 0o600, 0o600)
    assert mode(data / "itsm-tui") == 0o700 and mode(data) == 0o700


def test_an_existing_shared_file_and_folder_keep_their_modes(tmp_path) -> None:
    shared = tmp_path / "desk"
    shared.mkdir()
    os.chmod(shared, 0o2770)  # the shared-host recipe: the group's folder, set-group-ID
    target = shared / "desk.db"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o660)
    os.close(fd)
    os.chmod(target, 0o660)
    result = child(str(target))
    assert result["code"] == 0
    assert (result["file"], result["wal"], result["shm"]) == (0o660, 0o660, 0o660)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o2770


def test_an_in_memory_database_makes_no_file(tmp_path, monkeypatch) -> None:
    from itsm_tui.db import make_engine

    monkeypatch.chdir(tmp_path)
    make_engine("sqlite://").dispose()
    make_engine("sqlite:///:memory:").dispose()
    assert list(tmp_path.iterdir()) == []
