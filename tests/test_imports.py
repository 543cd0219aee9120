"""The import graph of mailgate/, read with `ast`: it flows one way, with no cycles.

Layers, from the bottom: the shared words and settings (errors, vocabulary,
config); pure mail logic (mail/), which imports nothing from the database; the
domain (models, tickets, sla, outbound mail); the pipeline; the transports
(inbound/); the daemon and the command line on top. A module may import from its
own layer and below, never above.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mailgate"

# the modules (or packages) above the domain, in order: each may import those
# before it, never those after it
UPPER = ["mailgate.pipeline", "mailgate.inbound", "mailgate.jobs", "mailgate.daemon",
         "mailgate.cli", "mailgate.__main__"]
DATABASE = ("mailgate.db", "mailgate.models", "mailgate.tickets", "mailgate.gateway",
            "mailgate.storage", "mailgate.sla", "mailgate.views", "mailgate.outbound")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")
            if "migrations" not in p.parts}


def imports(path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported mailgate module, line, inside a function) for every import in `path`."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # for annotations only: never run
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, in_function) for a in child.names
                             if a.name.startswith("mailgate"))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[:len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                if not base.startswith("mailgate"):
                    continue
                for alias in child.names:
                    target = f"{base}.{alias.name}"
                    found.append((target if target in known else base, child.lineno,
                                  in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: {target for target, _, _ in imports(path, known) if target != name}
            for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def layer(module: str) -> int:
    for number, top in enumerate(UPPER, start=1):
        if module == top or module.startswith(top + "."):
            return number
    return 0


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_another_that_imports_it_back():
    assert cycles(graph()) == []


def test_imports_flow_down_the_layers():
    upward = [f"{source} -> {target}" for source, targets in graph().items()
              for target in targets if layer(target) > layer(source)]
    assert upward == []


def test_pure_mail_logic_never_touches_the_database():
    wrong = [f"{source} -> {target}" for source, targets in graph().items()
             if source.startswith("mailgate.mail") for target in targets
             if target.startswith(DATABASE + tuple(UPPER))]
    assert wrong == []


def imports_in_functions(path: Path) -> list[int]:
    """The lines of every import statement inside a function body."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines.extend(inner.lineno for inner in ast.walk(node)
                         if isinstance(inner, (ast.Import, ast.ImportFrom)))
    return sorted(set(lines))


@pytest.mark.parametrize("name", sorted(modules()))
def test_function_level_imports_say_why(name):
    """Imports inside functions hide the graph; each one left keeps start-up fast (or
    an optional dependency optional) and says so in a comment just above it."""
    path = modules()[name]
    text = path.read_text().splitlines()
    silent = [f"{name}:{line}" for line in imports_in_functions(path)
              if not explained(text, line - 1)]
    assert silent == []


def explained(text: list[str], index: int) -> bool:
    """A comment on the import's line, or just above the block of imports it is in."""
    while index > 0 and text[index - 1].strip().startswith(("from ", "import ")):
        index -= 1
    return "#" in text[index] or (index > 0 and text[index - 1].strip().startswith("#"))
