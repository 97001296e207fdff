"""Other operating-system users: a Python they may run (root's own is private) with the checkout's
dependencies, and the checkout's code copied where they may read it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SYSTEM_PYTHON = Path("/usr/bin/python3")
_ROOT = Path(__file__).resolve().parent.parent


def copy_source(target: Path) -> Path:
    """The package's source (with its screens and data folders) copied where every user may read it."""
    target.mkdir(mode=0o755)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("itsm_tui", "screens", "data"):
        shutil.copytree(_ROOT / name, target / name, symlinks=True, ignore=ignore)
    shutil.copy(_ROOT / "pyproject.toml", target / "pyproject.toml")
    for folder, _dirs, files in os.walk(target):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(Path(folder) / name, 0o644)
    return target


def system_venv() -> Path:
    """A virtual environment of the system's Python with the checkout installed (its dependencies, that is:
    the code run is the session's copy, first on PYTHONPATH). Built once and kept under /tmp, keyed by
    pyproject.toml, so that the next runs find it."""
    key = hashlib.sha256((_ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    venv = Path(tempfile.gettempdir()) / f"itsm-os-users-venv-{key}"
    import fcntl

    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one xdist worker builds it, the others wait
        if not (venv / "ready").exists():
            shutil.rmtree(venv, ignore_errors=True)
            source = copy_source(Path(tempfile.mkdtemp(prefix="itsm-os-users-build-")) / "src")
            try:
                subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], check=True, timeout=300)
                subprocess.run(
                    [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)],
                    check=True,
                    timeout=900,
                )
            finally:
                shutil.rmtree(source.parent, ignore_errors=True)
            (venv / "ready").touch()
    return venv / "bin" / "python"
