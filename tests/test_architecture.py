"""The package's shape: no import cycles, imports at the top, short functions, whole-function slow marks."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "decompvae"

#: Optional dependencies (and the pyplot backend choice) may be imported where they are needed.
LAZY_ALLOWED = {"matplotlib", "torch", "tensorboardX", "markdown"}

#: The longest function allowed, in lines from ``def`` to its last line (docstring included; a factory counts its
#: closures), in the package and the benchmarks.
LONGEST_FUNCTION = 60


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), filename=str(path))
    return found


def _top_level_imports(name: str, tree: ast.Module, modules) -> set[str]:
    """The package modules ``name`` imports at import time (a submodule named in ``from p import s`` counts as s)."""
    is_package = (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()
    targets = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in modules else base)
    return {t for t in targets if t in modules and t != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _top_level_imports(name, tree, modules) for name, tree in modules.items()}
    graph = {k: {t for t in v if not (k.startswith(t + "."))} for k, v in graph.items()}  # a package's own parent
    assert _cycles(graph) == []


#: What the pure objective may import: the distributions, the estimators and the registry of regulariser kinds.
OBJECTIVE_NEEDS = {
    "decompvae._checks", "decompvae.divergences", "decompvae.penalties", "decompvae.discriminator",
    "decompvae.regularisers", "decompvae.likelihoods", "decompvae.posteriors",
}


def _imported_by(name: str) -> set[str]:
    """Every package module ``name`` imports at import time, directly or through another (its package's ``__init__`` aside)."""
    modules = _modules()
    graph = {m: _top_level_imports(m, tree, modules) - {"decompvae"} for m, tree in modules.items()}
    seen, todo = set(), [name]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_objective_imports_only_what_a_loss_needs():
    """No method presets, configs, builders, trainers, data or metrics behind the loss (issue: registries)."""
    assert _imported_by("decompvae.objective") <= OBJECTIVE_NEEDS, sorted(_imported_by("decompvae.objective"))
    assert "decompvae.methods" not in _imported_by("decompvae.regularisers")


def test_imports_are_at_the_top():
    lazy = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import):
                        roots = {a.name.split(".")[0] for a in inner.names}
                    elif isinstance(inner, ast.ImportFrom):
                        roots = {(inner.module or "").split(".")[0]}
                    else:
                        continue
                    if not roots <= LAZY_ALLOWED:
                        lazy.append(f"{name}.{node.name}: {sorted(roots)}")
    assert lazy == []


def test_functions_are_short():
    longest = []
    for path in [p for d in ("decompvae", "benchmarks") for p in (PACKAGE.parent / d).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                longest.append((node.end_lineno - node.lineno + 1, f"{path.name}:{node.name}"))
    assert max(longest)[0] <= LONGEST_FUNCTION, sorted(longest)[-5:]


def test_the_slow_list_names_existing_tests():
    """Every entry of tests/slow_tests.txt is a test function of an existing file (no stale entries)."""
    from conftest import slow_test_ids

    root = PACKAGE.parent
    for node in slow_test_ids():
        path, *names = node.split("::")
        tree = ast.parse((root / path).read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert all(name in defined for name in names), node


def test_slow_marks_select_whole_test_functions():
    """Neither the slow list nor a test file marks one parametrization slow: what the default run covers of a
    test function is all of it or none, whichever machine measured the list."""
    from conftest import slow_test_ids

    assert not [node for node in slow_test_ids() if "[" in node]
    per_parameter = []
    for path in sorted((PACKAGE.parent / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.param":
                marks = [ast.unparse(k.value) for k in node.keywords if k.arg == "marks"]
                per_parameter += [f"{path.name}:{node.lineno}" for m in marks if "slow" in m]
    assert not per_parameter


def test_the_slow_list_is_written_per_test_function():
    """_slow_list sums a function's parametrizations, so an entry selects the whole function."""
    from _slow_list import function_times

    seconds = {"tests/a.py::test_t[1]": 2.0, "tests/a.py::test_t[2]": 3.0, "tests/a.py::test_u": 1.0,
               "tests/a.py::TestC::test_v[x-y]": 4.0}
    assert function_times(seconds) == {"tests/a.py::test_t": 5.0, "tests/a.py::test_u": 1.0,
                                       "tests/a.py::TestC::test_v": 4.0}
