"""The floor plan, enforced: every module's imports (read with `ast`, lazy ones included) go
down the layer table or stay on their floor, and no modules import each other in a circle.

`LAYERS` is the one table (docs/architecture.md shows it, and a test here keeps the two equal).
A package of the table that does not exist (yet) is simply not checked; an import of a regsync
module the table does not place fails, so a new package gets a floor when it is added.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"common": "regsync.common", "daemon": "regsync.daemon", "ctl": "regsync.ctl",
           "ui": "regsync.ui"}

#: bottom up: a module may import its own floor and the floors below it, never one above
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("common", ("regsync.common",)),
    ("base", ("regsync.daemon.base",)),
    ("values", ("regsync.daemon.values",)),
    ("settings", ("regsync.daemon.settings",)),
    ("oci", ("regsync.daemon.oci",)),
    ("registry", ("regsync.daemon.registry",)),
    ("engine", ("regsync.daemon.engine",)),
    ("config", ("regsync.daemon.config",)),
    ("store", ("regsync.daemon.store",)),
    ("runtime", ("regsync.daemon.runtime", "regsync.daemon.monitor", "regsync.daemon.notify")),
    ("control", ("regsync.daemon.control",)),
    ("proto", ("regsync.proto",)),
    ("api", ("regsync.daemon.api",)),
    ("cli", ("regsync.daemon.cli",)),
)
#: the clients reach the daemon only through the gRPC API: these and their own modules
CLIENTS = {"regsync.ctl": ("regsync.common", "regsync.proto"),
           "regsync.ui": ("regsync.common", "regsync.proto")}

PENDING_UPWARD: set[tuple[str, str]] = set()
PENDING_CIRCLES: set[frozenset[str]] = set()


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every source module by its installed name: (file, is a package's __init__)."""
    found = {}
    for folder, package in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [package, *path.relative_to(ROOT / folder).with_suffix("").parts]
            is_init = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_init else parts)] = (path, is_init)
    return found


MODULES = _modules()


def _imported(name: str, path: Path, is_init: bool) -> Iterator[tuple[str, int]]:
    """(module, line) for each regsync module `name` imports; `from P import m` names P.m."""
    package = name if is_init else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            submodules = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in
                          MODULES]
            targets = submodules or [module]
        else:
            continue
        for target in targets:
            if target.startswith("regsync.") and not name.startswith(target + "."):
                yield target, node.lineno  # (a package's own ancestors do not count)


IMPORTS = {name: sorted(set(_imported(name, path, is_init)))
           for name, (path, is_init) in MODULES.items()}


def _owner(module: str) -> tuple[int, str] | None:
    """(floor, table entry) of `module`: the longest entry it is or lies under."""
    best: tuple[int, str] | None = None
    for floor, (_, packages) in enumerate(LAYERS):
        for package in packages:
            if (module == package or module.startswith(package + ".")) and (
                    best is None or len(package) > len(best[1])):
                best = (floor, package)
    return best


def _client(module: str) -> str | None:
    return next((c for c in CLIENTS if module == c or module.startswith(c + ".")), None)


def _exists(package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in MODULES)


def test_every_module_has_a_floor() -> None:
    homeless = [m for m in MODULES if m != "regsync.daemon" and _owner(m) is None
                and _client(m) is None]
    assert not homeless, f"add these to LAYERS (and docs/architecture.md): {homeless}"


def test_no_import_goes_up_a_floor() -> None:
    upward, seen = [], set()
    for name, imports in IMPORTS.items():
        here = _owner(name)
        if here is None:
            continue
        for target, line in imports:
            there = _owner(target)
            if there is None:
                upward.append(f"{name}:{line} imports {target}, which has no floor")
            elif there[0] > here[0]:
                seen.add((here[1], there[1]))
                if (here[1], there[1]) not in PENDING_UPWARD:
                    upward.append(f"{name}:{line} imports {target} ({LAYERS[there[0]][0]} is "
                                  f"above {LAYERS[here[0]][0]})")
    assert not upward, "\n".join(upward)
    stale = {p for p in PENDING_UPWARD if all(map(_exists, p)) and p not in seen}
    assert not stale, f"no longer imported up: delete from PENDING_UPWARD: {stale}"


def test_the_clients_reach_the_daemon_only_through_the_api() -> None:
    """regsyncctl and the panel import their own modules, `regsync.common` and the stubs."""
    wrong = []
    for name, imports in IMPORTS.items():
        client = _client(name)
        if client is None:
            continue
        allowed = (client, *CLIENTS[client])
        wrong += [f"{name}:{line} imports {target}" for target, line in imports
                  if not any(target == a or target.startswith(a + ".") for a in allowed)]
    assert not wrong, "\n".join(wrong)


def _circles() -> list[frozenset[str]]:
    """Modules that import each other, directly or round a loop (Tarjan's components)."""
    graph: defaultdict[str, set[str]] = defaultdict(set)
    for name, imports in IMPORTS.items():
        graph[name] |= {t for t, _ in imports if t in MODULES and t != name}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(frozenset(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return circles


def test_no_import_circle() -> None:
    circles = _circles()
    new = [sorted(c) for c in circles if c not in PENDING_CIRCLES]
    assert not new, f"modules importing each other: {new}"
    stale = {c for c in PENDING_CIRCLES if all(m in MODULES for m in c) and c not in circles}
    assert not stale, f"no longer a circle: delete from PENDING_CIRCLES: {stale}"


def test_the_ctl_command_tree_is_not_a_circle() -> None:
    """`ctl/parser.py` and `ctl/commands/*` imported each other (the building blocks are in
    `ctl/tree.py` now, which both import)."""
    commands = {t for t, _ in IMPORTS["regsync.ctl.parser"] if t.startswith("regsync.ctl.commands")}
    assert commands  # the parser assembles the areas...
    for area in commands:  # ...and no area imports the parser back
        assert "regsync.ctl.parser" not in {t for t, _ in IMPORTS[area]}, area


#: a module does one job: past this many lines it is doing several (issue 11)
MODULE_LINES_MAX = 450


def test_no_module_is_over_the_size_limit() -> None:
    long = {name: n for name, (path, _) in MODULES.items()
            if (n := len(path.read_text().splitlines())) > MODULE_LINES_MAX}
    assert not long, f"split these along their jobs: {long}"


def test_the_document_shows_the_table() -> None:
    """docs/architecture.md lists the floors as `N. name: packages`, the same as LAYERS."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    shown = re.findall(r"^\s*(\d+)\. `(\w+)`: (.+)$", text, re.MULTILINE)
    documented = [(name, tuple(re.findall(r"`(regsync[\w.]*)`", packages)))
                  for _, name, packages in shown]
    assert documented == list(LAYERS)


@pytest.mark.parametrize("layer", [name for name, _ in LAYERS])
def test_a_floor_that_exists_is_a_package_or_module_here(layer: str) -> None:
    """A typo in the table would silently check nothing: every entry names real code, but the
    modules issue 11's other parts add or remove and the generated stubs (not scanned here)."""
    packages = dict(LAYERS)[layer]
    elsewhere = {"regsync.proto"}
    assert all(_exists(p) or p in elsewhere for p in packages), packages
