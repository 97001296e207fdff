"""The import graph of the package: dependencies point one way, and the services stay below the console.

Every module under ``itsm_tui/`` (the screens through the ``itsm_tui/screens`` link, as
``itsm_tui.screens.*``) is parsed, not imported, so a cycle is found even where a function-level import keeps
it from breaking at start-up: such an import only hides that two modules need each other. Imports under
``if TYPE_CHECKING:`` are left out, since they never run; so are the migrations' version files, which Alembic
loads by path.
"""

from __future__ import annotations

import ast
import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "itsm_tui"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
SKIPPED = ("migrations/versions",)  # folders under the package root
# What the business rules must never reach for: the console, the command line and the jobs that use them.
ABOVE_SERVICES = (
    "textual",
    "textual_plotext",
    "textual_serve",
    f"{PACKAGE}.screens",
    f"{PACKAGE}.app",
    f"{PACKAGE}.jobs",
    f"{PACKAGE}.cli",
)


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it stands, and whether only the type checker sees it."""

    source: str
    target: str
    where: str  # file:line
    type_checking: bool


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (following the screens link)."""
    skipped = {root / folder for folder in SKIPPED}
    modules: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and here / d not in skipped)
        parts = here.relative_to(root.parent).parts
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            stem = name[:-3]
            dotted = ".".join(parts if stem == "__init__" else (*parts, stem))
            modules[dotted] = here / name
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(
    nodes: Iterable[ast.AST], hidden: bool = False
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement in the nodes, at any depth, and whether it is under ``if TYPE_CHECKING:``."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, hidden
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.body, True)
            yield from _statements(node.orelse, hidden)
        else:
            yield from _statements(ast.iter_child_nodes(node), hidden)


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names, relative imports resolved against ``module``."""
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    parts = package.split(".")
    if node.level > 1:
        parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def imports(modules: dict[str, Path], root: Path = ROOT) -> list[Import]:
    """Every import of the package's modules (and of anything else, for the layer rules), resolved."""
    found: list[Import] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, hidden in _statements(tree.body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _base(module, path, node)
                # ``from pkg import submodule`` imports the submodule; ``from mod import name`` the module
                named = [f"{base}.{alias.name}" for alias in node.names]
                targets = [name if name in modules else base for name in named]
            where = f"{path.relative_to(root.parent).as_posix()}:{node.lineno}"
            for target in dict.fromkeys(targets):
                found.append(Import(module, target, where, hidden))
    return found


def _inside(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def import_graph(root: Path = ROOT) -> dict[str, dict[str, Import]]:
    """Module -> the package's modules it imports at run time (each with its first import statement)."""
    modules = module_files(root)
    graph: dict[str, dict[str, Import]] = {module: {} for module in modules}
    for item in imports(modules, root):
        if item.type_checking or not _inside(item.target, PACKAGE) or item.target == item.source:
            continue
        graph[item.source].setdefault(item.target, item)
        graph.setdefault(item.target, {})
    return graph


def cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan), as a closed path of names."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_through(graph, group) for group in sorted(groups)]


def _path_through(graph: dict[str, dict[str, Import]], group: list[str]) -> list[str]:
    """The shortest cycle from the group's first module back to itself, staying inside the group."""
    members, start = set(group), group[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt not in members or nxt in came_from:
                    continue
                came_from[nxt] = node
                if nxt == start:
                    path = [start]
                    while path[-1] != start or len(path) == 1:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {group}")  # a strongly connected group always has one


def describe(graph: dict[str, dict[str, Import]], cycle: list[str]) -> str:
    steps = [f"{a} -> {b} ({graph[a][b].where})" for a, b in itertools.pairwise(cycle)]
    return " -> ".join(cycle) + "\n      " + "\n      ".join(steps)


def test_the_package_is_found_whole():
    modules = module_files()
    for name in ("itsm_tui.services.sla", "itsm_tui.scheduler", "itsm_tui.screens", "itsm_tui.screens.queue"):
        assert name in modules, name
    assert not any(name.startswith("itsm_tui.migrations.versions") for name in modules)


def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n  " + "\n  ".join(describe(graph, c) for c in found)


def services_reaching_up(root: Path = ROOT) -> list[str]:
    """Imports by the services of what sits above them; the type checker's imports count too, since the
    business rules know nothing of the console, the jobs or the command line even for their types."""
    return [
        f"{item.where}: {item.source} imports {item.target}"
        for item in imports(module_files(root), root)
        if _inside(item.source, f"{PACKAGE}.services")
        and any(_inside(item.target, above) for above in ABOVE_SERVICES)
    ]


def test_services_never_import_the_console_the_jobs_or_the_command_line():
    wrong = services_reaching_up()
    assert not wrong, "\n".join(wrong)


def test_the_configuration_sits_below_the_services():
    """The services read the configuration; what both need (roles, levels, kinds) lives in constants."""
    graph = import_graph()
    assert f"{PACKAGE}.constants" in graph
    assert set(graph[f"{PACKAGE}.constants"]) == set()
    assert set(graph[f"{PACKAGE}.config"]) <= {f"{PACKAGE}.constants"}


# --------------------------------------------------------------------------- the checker itself


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        target = root / PACKAGE / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root / PACKAGE


def test_the_checker_finds_hidden_relative_and_submodule_cycles(tmp_path: Path):
    files = {
        "__init__.py": "",
        "services/__init__.py": "",
        "services/a.py": "from itsm_tui.services import b\n",
        "services/b.py": "def later():\n    from . import c\n",
        "services/c.py": "from .a import thing\n",
        "services/d.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from itsm_tui.services import e\n"
        ),
        "services/e.py": "import itsm_tui.services.d\n",
        "migrations/versions/0001.py": "from itsm_tui.services import a\n",
    }
    graph = import_graph(_tree(tmp_path, files))
    assert cycles(graph) == [
        ["itsm_tui.services.a", "itsm_tui.services.b", "itsm_tui.services.c", "itsm_tui.services.a"]
    ]
    assert "itsm_tui.migrations.versions.0001" not in graph


def test_the_checker_finds_services_reaching_up(tmp_path: Path):
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "jobs/__init__.py": "",
            "jobs/scan.py": "from itsm_tui.services import rules\n",
            "services/__init__.py": "",
            "services/rules.py": "def run():\n    from ..jobs import scan\n",
            "services/view.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from textual.app import App\n"
            ),
        },
    )
    assert services_reaching_up(root) == [
        "itsm_tui/services/rules.py:2: itsm_tui.services.rules imports itsm_tui.jobs.scan",
        "itsm_tui/services/view.py:3: itsm_tui.services.view imports textual.app",
    ]
