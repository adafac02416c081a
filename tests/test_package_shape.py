"""The package's shape: module-level imports follow DESIGN.md's order with no cycle, and
no function is longer than one screen.

physics ← groups ← theory ← losses ← models ← data ← training ← classical ← cli: a module may
import from its own folder or folders earlier in this list, never from a later one. Imports inside
functions (optional, lazy) are not module-level and are not counted.
"""

import ast
from pathlib import Path

import selfrecon

ORDER = ["physics", "groups", "theory", "losses", "models", "data", "training", "classical", "cli"]
ROOT = Path(selfrecon.__file__).parent


def _module_names() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        out[".".join(("selfrecon", *rel.parts)).removesuffix(".__init__")] = path
    return out


def _module_imports():
    names = _module_names()
    edges = {}
    for name, path in names.items():
        found = set()
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:  # `from pkg import submodule` depends on the submodule
                    sub = f"{node.module}.{a.name}"
                    found.add(sub if sub in names else node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        edges[name] = {m for m in found if m.startswith("selfrecon.")}
    return edges


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return ORDER.index(parts[1]) if len(parts) > 1 and parts[1] in ORDER else None


def test_no_module_imports_a_later_layer():
    bad = []
    for mod, deps in _module_imports().items():
        me = _layer(mod)
        for dep in deps:
            them = _layer(dep)
            if me is not None and them is not None and them > me:
                bad.append(f"{mod} imports {dep}")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycle():
    edges = _module_imports()
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for d in edges.get(m, ()):
            d = d if d in edges else next((e for e in edges if d.startswith(e + ".")), d)
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " → ".join([*path, m, d]))
            if d in edges and state.get(d) is None:
                visit(d, [*path, m])
        state[m] = 2

    for m in sorted(edges):
        if state.get(m) is None:
            visit(m, [])


def test_no_function_in_src_is_longer_than_60_lines():
    """One screen per function (issue 14): longer ones are split into named helpers."""
    long = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "\n".join(long)
