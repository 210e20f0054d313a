"""adamgen's modules import downward only (docs/architecture.md): the import graph, read from
the source with `ast`, has no circle, and an import inside a function body says why it is
there (start-up speed or an optional library), never to dodge a circle."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "adamgen"

# the layers, bottom first; a module may import its own layer and the ones below
LAYERS = [
    ("base", ["_version", "errors", "settings", "seeding", "resources", "_io", "logs",
              "locks", "checkpoint"]),
    ("registries", ["data", "models", "optim", "probes", "engines"]),
    ("config", ["config", "identity"]),
    ("plan and files", ["battery", "planner", "plan_cache", "runfile", "datafile",
                        "analysis"]),
    ("work", ["trainer", "jobs", "convex", "aggregate", "tables", "claims", "figures", "progress",
              "card", "cli", "__main__", ""]),
]
MOST_UPWARD = 2


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _target(module: str, path: Path, node: ast.ImportFrom | ast.Import, alias) -> str:
    if isinstance(node, ast.Import):
        name = alias.name
        return name[len("adamgen."):] if name.startswith("adamgen.") else (
            "" if name == "adamgen" else None)
    if node.level == 0:
        if node.module is None or not (node.module == "adamgen" or
                                       node.module.startswith("adamgen.")):
            return None
        base = node.module[len("adamgen"):].lstrip(".")
    else:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = [p for p in package if p]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
    candidate = f"{base}.{alias.name}".lstrip(".")
    return candidate if candidate in _modules() else base


def _imports() -> list[tuple[str, str, bool, int]]:
    """(module, imported module, inside a function, line) for every import of adamgen."""
    modules, out = _modules(), []
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        functions = (ast.FunctionDef, ast.AsyncFunctionDef)
        inner = {id(n) for f in ast.walk(tree) if isinstance(f, functions) for n in ast.walk(f)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for alias in node.names:
                target = _target(module, path, node, alias)
                while target and target not in modules:
                    target = target.rsplit(".", 1)[0] if "." in target else ""
                if target is not None and target != module:
                    out.append((module, target, id(node) in inner, node.lineno))
    return out


def _layer(module: str) -> int:
    top = module.split(".")[0]
    return next(k for k, (_, names) in enumerate(LAYERS) if top in names)


def test_every_module_has_a_layer():
    for module in _modules():
        assert any(module.split(".")[0] in names for _, names in LAYERS), \
            f"adamgen.{module} belongs to no layer of tests/test_layers.py"


def test_the_import_graph_has_no_circle():
    graph: dict[str, set[str]] = {}
    for source, target, _, _ in _imports():
        graph.setdefault(source, set()).add(target)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_imports_go_downward():
    upward = [(s, t) for s, t, _, _ in _imports() if _layer(t) > _layer(s)]
    assert len(upward) <= MOST_UPWARD, f"upward imports: {upward}"


def test_an_import_inside_a_function_says_why():
    """A lazy import is for start-up speed (the command line answers --help at once, reading
    a config imports no torch) or an optional library, with a comment saying so."""
    unexplained = []
    for module, _, inner, line in _imports():
        if not inner:
            continue
        source = _modules()[module].read_text().splitlines()
        context = " ".join(source[max(0, line - 3):line + 1]).lower()
        if "lazy" not in context:
            unexplained.append(f"adamgen.{module}:{line}")
    assert not unexplained, f"imports inside functions without a '# lazy: why' comment: " \
                            f"{unexplained}"
