"""The house's boundaries, read from the import graph of every module.

- the protocol imports no web framework, no database library, and nothing of
  the server, the desk or the command line;
- ``portal.common`` (plumbing both sides use) imports neither side;
- the desk never imports the server, directly or through anything it imports;
- the package root imports nothing at load time, so loading any part of the
  desk never loads the online app.

Every import counts, including those inside functions and under
``TYPE_CHECKING``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("flask", "flask_wtf", "flask_babel", "werkzeug", "wtforms", "jinja2")
DATABASES = ("sqlalchemy", "alembic", "psycopg")


@dataclass(frozen=True)
class Violation:
    module: str
    reaches: str
    path: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.module} reaches {self.reaches} via {' -> '.join(self.path)}"


def module_name(package_root: Path, path: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Every module ``path`` imports, as absolute dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            # ``from package import module`` imports the module too
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def graph(package_root: Path) -> dict[str, set[str]]:
    """Module -> what it imports (portal modules that exist, and third-party tops)."""
    paths = {module_name(package_root, p): p for p in package_root.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for name, path in paths.items():
        edges = set()
        for imported in imports_of(path, name):
            if imported.split(".")[0] == "portal":
                if imported in paths:
                    edges.add(imported)
            else:
                edges.add(imported.split(".")[0])
        out[name] = edges
    return out


def violations(package_root: Path) -> list[Violation]:
    edges = graph(package_root)

    def forbidden(module: str) -> tuple[str, ...]:
        if module.startswith("portal.protocol"):
            return ("portal.server", "portal.desk", "portal.cli", *FRAMEWORKS, *DATABASES)
        if module.startswith("portal.common"):
            return ("portal.server", "portal.desk", "portal.cli")
        if module.startswith("portal.desk") or module == "portal.cli.desk":
            return ("portal.server", "portal.cli.server")
        if module == "portal":
            return ("portal.",)
        return ()

    found = []
    for start in sorted(edges):
        banned = forbidden(start)
        if not banned:
            continue
        # The root is allowed lazy imports inside its functions only: check its top level.
        if start == "portal":
            tree = ast.parse((package_root / "__init__.py").read_text(encoding="utf-8"))
            top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
            for node in top:
                module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                if module and module.startswith("portal"):
                    found.append(Violation(start, module, (start,)))
            continue
        seen = {start: (start,)}
        queue = [start]
        while queue:
            here = queue.pop()
            for nxt in sorted(edges.get(here, ())):
                if nxt in seen:
                    continue
                seen[nxt] = (*seen[here], nxt)
                if any(
                    nxt == b or nxt.startswith(b + ".") or (b.endswith(".") and nxt.startswith(b))
                    for b in banned
                ):
                    found.append(Violation(start, nxt, seen[nxt]))
                    continue
                if nxt in edges:
                    queue.append(nxt)
    return found


def test_the_protocol_the_desk_and_the_plumbing_keep_their_boundaries() -> None:
    assert [str(v) for v in violations(ROOT / "portal")] == []


def test_every_part_the_folders_name_is_there() -> None:
    parts = {p.name for p in (ROOT / "portal").iterdir() if (p / "__init__.py").exists()}
    assert {"protocol", "server", "desk", "common", "cli"} <= parts
    edges = graph(ROOT / "portal")
    assert any(m.startswith("portal.desk.") for m in edges)  # the walk sees the desk


@pytest.mark.parametrize(
    ("module", "line", "reaches"),
    [
        ("desk/keystore.py", "from portal.server.config import Config", "portal.server.config"),
        (
            "desk/keystore.py",
            "from portal.protocol import bundles  # fine\n"
            "from portal.common.blobs import BlobStore\n"
            "def f():\n    from portal.server import mailboxes",
            "portal.server.mailboxes",
        ),
        ("protocol/codes.py", "import flask", "flask"),
        ("protocol/codes.py", "from portal.common.db import Database", "sqlalchemy"),
        ("common/atomic.py", "from portal.desk import store", "portal.desk.store"),
        ("__init__.py", "from portal.server.app import create_app", "portal.server.app"),
    ],
)
def test_the_check_fails_when_a_boundary_is_crossed(
    tmp_path: Path, module: str, line: str, reaches: str
) -> None:
    """Performed on a copy: one crossing import added, the check names it."""
    copy = tmp_path / "portal"
    shutil.copytree(ROOT / "portal", copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + "\n" + line + "\n", encoding="utf-8")
    assert any(v.reaches == reaches for v in violations(copy)), violations(copy)


def test_loading_the_whole_desk_loads_no_server_module() -> None:
    """What the interpreter actually loads, not only what the source says."""
    desk = sorted(
        module_name(ROOT / "portal", p)
        for p in [*(ROOT / "portal" / "desk").rglob("*.py"), ROOT / "portal" / "cli" / "desk.py"]
    )
    script = (
        "import importlib, sys\n"
        f"for name in {desk!r}: importlib.import_module(name)\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('portal.server')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


def test_tests_and_benchmarks_share_only_the_harness() -> None:
    """No test module imports another or conftest (fixtures come by name), and
    tests never import the benchmarks: what both need lives in tests/harness."""
    crossings = []
    for folder in ("tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            name = module_name(ROOT / folder, path)
            for imported in imports_of(path, name):
                leaf = imported.rpartition(".")[2]
                if imported.startswith("tests") and (
                    leaf.startswith("test_") or leaf == "conftest"
                ):
                    crossings.append(f"{name} imports {imported}")
                if folder == "tests" and imported.split(".")[0] == "bench":
                    crossings.append(f"{name} imports {imported}")
    assert crossings == []
