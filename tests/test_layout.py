"""The layout of the code: the import graph of ``theory/`` and ``experiments/``, read from every module's own
imports with ``ast``, has no cycle and runs one way, down the layers the README map states; no module is
longer than 500 lines; the README map names every folder and every folder it names exists.

Edges of the graph: ``import a.b`` and ``from a import b`` (absolute and relative, at any depth of the
module: a function-level import counts the same as one at the top), and a string that is exactly the name
of a module (the registries ``experiments.cli.SUBCOMMANDS`` and ``experiments.ledger.checks.MODULES``, and
``__import__`` / ``python -m`` commands, are imports by name).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("theory", "experiments")
MAX_LINES = 500

# The layers, lowest first: a module may import from its own group and from groups of a lower rank only.
# cifar/ and ledger/ share a rank, so neither imports the other.
RANKS = {
    "theory": 0,
    "experiments.common": 1,
    "experiments.cifar": 2,
    "experiments.ledger": 2,
    "experiments.analysis": 3,
    "experiments.bench": 4,
    "experiments.cli": 5,
    "experiments": 5,  # the package itself (its __init__)
}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module that ``import name`` loads last (``a.b.c`` where ``c`` is a function: ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_resolve(a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            for a in node.names:  # `from pkg import mod` imports pkg.mod; `from mod import name` imports mod
                found.add(_resolve(f"{base}.{a.name}") if f"{base}.{a.name}" in MODULES else _resolve(base))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in MODULES:
            found.add(node.value)
    found.discard(None)
    found.discard(module)
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _group(module: str) -> str:
    return max((g for g in RANKS if module == g or module.startswith(g + ".")), key=len)


def _is_command(module: str) -> bool:
    """A command: the entry point, or a module that adds a sub-command (defines ``add_parser``)."""
    if module == "experiments.cli":
        return True
    tree = ast.parse(MODULES[module].read_text())
    return any(isinstance(n, ast.FunctionDef) and n.name == "add_parser" for n in tree.body)


def _cycle() -> list[str] | None:
    """One import cycle of GRAPH, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(GRAPH):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_graph_is_read_from_the_code():
    """The graph is not empty and sees the kinds of import the code uses (so the checks below can fail)."""
    assert len(MODULES) > 60
    assert "experiments.ledger.verify" in GRAPH["experiments.cli"]  # a string registry
    assert "experiments.ledger.checks.thm43" in GRAPH["experiments.ledger.checks"]  # checks.MODULES
    assert "theory.bounds" in GRAPH["experiments.ledger.claims"]  # a function-level import
    assert "experiments.cifar.methods.base" in GRAPH["experiments.cifar.methods.ce"]


def test_no_import_cycle():
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_run_down_the_layers():
    """theory/ never imports experiments/; common/ imports only theory/; cifar/ and ledger/ never import each
    other, the analysis commands or the benchmarks; analysis/ never imports bench/; nothing imports the CLI."""
    up = [f"{m} -> {n}" for m, ns in GRAPH.items() for n in sorted(ns)
          if _group(n) != _group(m) and RANKS[_group(n)] >= RANKS[_group(m)]]
    assert not up, "imports that run up (or across) the layers:\n" + "\n".join(up)


def test_no_module_that_is_not_a_command_imports_a_command():
    """Commands (``add_parser``) sit on top of their folder: a check, a loop, a plot never imports one."""
    bad = [f"{m} -> {n}" for m, ns in GRAPH.items() if not _is_command(m) for n in sorted(ns) if _is_command(n)]
    assert not bad, "non-command modules importing a command:\n" + "\n".join(bad)


def test_checks_import_only_the_ledger_rules_their_plots_and_theory():
    """A check module measures (theory/), judges (claims) and hands its figures to plots/; it never imports
    the ledger's writer or command, and a plot never imports a check."""
    checks = [m for m in GRAPH if m.startswith("experiments.ledger.checks")]
    allowed = ("theory", "experiments.common", "experiments.ledger.claims", "experiments.ledger.checks",
               "experiments.ledger.plots")
    bad = [f"{m} -> {n}" for m in checks for n in sorted(GRAPH[m])
           if not any(n == a or n.startswith(a + ".") for a in allowed)]
    bad += [f"{m} -> {n}" for m, ns in GRAPH.items() if m.startswith("experiments.ledger.plots")
            for n in sorted(ns) if n.startswith("experiments.ledger.checks")]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("folder", ["theory", "experiments", "tests"])
def test_no_module_is_longer_than_500_lines(folder):
    long = {str(p.relative_to(ROOT)): n for p in sorted((ROOT / folder).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _map_entries() -> dict[str, str]:
    """``{folder path: its text}`` of the README's Map: an entry is a line whose first word ends in "/",
    nested by indentation; its text runs to the next entry."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Map", 1)[1].split("\n## ", 1)[0]
    entries: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    current = None
    for line in block.splitlines():
        m = re.match(r"^( {4,})([\w.-]+/)(\s|$)", line)
        if m:
            indent, name = len(m.group(1)), m.group(2).rstrip("/")
            while stack and stack[-1][0] >= indent:
                stack.pop()
            current = "/".join([p for _, p in stack] + [name])
            stack.append((indent, name))
            entries[current] = line[m.end(2):]
        elif current is not None and line.startswith(" " * 8):
            entries[current] += " " + line.strip()
    return entries


def test_the_readme_map_matches_the_folders():
    """Every folder the map names exists; every code folder is named in the map, as an entry of its own or
    as ``name/`` in its parent's entry."""
    entries = _map_entries()
    assert {"theory", "experiments", "experiments/ledger/checks", "tests"} <= set(entries)
    missing = [e for e in entries if not (ROOT / e).is_dir()]
    assert not missing, f"the README map names folders that do not exist: {missing}"
    folders = sorted({str(p.parent.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts})
    unnamed = [f for f in folders if f not in entries and not (
        str(Path(f).parent) in entries and re.search(rf"(^|[\s(,]){re.escape(Path(f).name)}/", entries[str(Path(f).parent)]))]
    assert not unnamed, f"folders the README map does not name: {unnamed}"
