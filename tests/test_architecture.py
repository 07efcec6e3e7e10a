"""The package's layering, read from its own imports (AST, function-level imports included):
no import cycles, and nothing on the serving path reaches torch, transformers or onnx."""

import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parents[1] / "spacy_bertprod"
TRAINING_LIBRARIES = (
    "torch",
    "transformers",
    "onnx",
    "spacy_transformers",
    "safetensors",
    "spacy_curated_transformers",
    "curated_transformers",
)
# What a served pipeline (and the HTTP service / Ray annotation) runs on.
SERVING = (
    "spacy_bertprod",
    "spacy_bertprod.component",
    "spacy_bertprod.transformer_model",
    "spacy_bertprod.backends",
    "spacy_bertprod.backends.base",
    "spacy_bertprod.backends.onnx",
    "spacy_bertprod.tokenization",
    "spacy_bertprod.data",
    "spacy_bertprod.listener",
    "spacy_bertprod.graph_heads",
    "spacy_bertprod.span_getters",
    "spacy_bertprod.architectures",
)
# A function longer than this (counted from its `def` line) is hard to read at once.
MAX_FUNCTION_LINES = 80
# A module longer than this holds more than one concern...
MAX_MODULE_LINES = 400
# ...except these, and why.
LONG_MODULES = {
    # spaCy's TrainablePipe contract (listeners, predict, update, initialize, to/from disk and
    # bytes) plus the encoder API the measurements use, in one class, as spacy-transformers'
    # Transformer; every method is short.
    "spacy_bertprod.component",
}
# The modules that build the transformer's thinc layers: only they reach a layer's sublayers by
# position or its attrs by key; everything else goes through their functions and the component.
MODEL_MODULES = (
    "spacy_bertprod.transformer_model",
    "spacy_bertprod.listener",
    "spacy_bertprod.graph_heads",
    "spacy_bertprod.backends",
)
ROOT = PACKAGE.parent


def _modules() -> Dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()
SERVING_MODULES = SERVING + tuple(m for m in MODULES if m.startswith("spacy_bertprod.serving"))


def _imported_names(module: str, path: Path) -> List[str]:
    """Every module name an import statement anywhere in the file may load."""
    names = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def _graph() -> Dict[str, Set[str]]:
    """module -> the modules of ours it imports, plus top-level names of what else it imports."""
    graph: Dict[str, Set[str]] = {}
    for module, path in MODULES.items():
        deps = set()
        for name in _imported_names(module, path):
            if name in MODULES:
                deps.add(name)
            elif not name.startswith("spacy_bertprod"):
                deps.add(name.split(".")[0])
        # Importing a.b.c runs a/__init__ and a/b/__init__ first.
        parts = module.split(".")
        deps.update(".".join(parts[:i]) for i in range(1, len(parts)))
        deps.discard(module)
        graph[module] = deps
    return graph


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan), our modules only."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph[node]:
            if dep not in graph:
                continue
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
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

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _reach(graph: Dict[str, Set[str]], start: str) -> Dict[str, str]:
    """Everything `start` can import, each with the module that imports it (for the message)."""
    seen = {start: ""}
    todo = [start]
    while todo:
        node = todo.pop()
        for dep in graph.get(node, ()):
            if dep not in seen:
                seen[dep] = node
                todo.append(dep)
    return seen


def _path(reach: Dict[str, str], end: str) -> str:
    steps = [end]
    while reach[steps[-1]]:
        steps.append(reach[steps[-1]])
    return " -> ".join(reversed(steps))


def test_no_import_cycles():
    # A parent package importing its own submodules (spacy_bertprod/__init__ -> component) is
    # how Python packages work; only cycles among the other edges count.
    graph = _graph()
    no_parents = {m: {d for d in deps if not (d in MODULES and m.startswith(d + "."))} for m, deps in graph.items()}
    assert _cycles(no_parents) == []


def test_serving_path_never_reaches_training_libraries():
    graph = _graph()
    reaches = []
    for module in SERVING_MODULES:
        reach = _reach(graph, module)
        reaches += [_path(reach, lib) for lib in TRAINING_LIBRARIES if lib in reach]
    assert reaches == []


def test_the_graph_test_can_fail():
    """The checks above see lazy imports and cycles (so a pass means something)."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert "torch" in _reach(_graph(), "spacy_bertprod.backends.torch")
    assert "torch" in _reach(_graph(), "spacy_bertprod.compress.export")  # a function-level import


def _long_functions() -> List[str]:
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{module}.{node.name} ({lines} lines)")
    return found


def test_no_function_longer_than_the_limit():
    assert _long_functions() == []


def test_no_module_longer_than_the_limit():
    long = {m: len(p.read_text(encoding="utf8").splitlines()) for m, p in MODULES.items()}
    assert {m: n for m, n in long.items() if n > MAX_MODULE_LINES and m not in LONG_MODULES} == {}


def _python_files():
    for folder in ("spacy_bertprod", "scripts", "reports", "tests"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_layers_and_attrs_by_position_only_in_the_model_modules():
    import re

    pattern = re.compile(r"layers\[0\]|attrs\[\"")
    found = []
    for path in _python_files():
        if _module_of(path).startswith(MODEL_MODULES) or path.name == "test_architecture.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}")
    assert found == []


def _private_definitions() -> Dict[str, Set[str]]:
    """Private names (`_x`) the package defines, and the modules that define them."""
    defined: Dict[str, Set[str]] = {}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
            name = None
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = node.name
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                name = node.attr
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                name = node.id
            if name and len(name) > 1 and name.startswith("_") and not name.startswith("__"):
                defined.setdefault(name, set()).add(module)
    return defined


def _private_uses(source: str, module: str, defined: Dict[str, Set[str]]) -> List[str]:
    """`name (line)` for each private name of another module that `source` imports or reads."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Attribute) and not (
            isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
        ):
            names = [node.attr]
        else:
            continue
        found += [f"{name} ({node.lineno})" for name in names if name in defined and module not in defined[name]]
    return found


def test_no_private_name_is_used_outside_its_module():
    """What another module needs is public; a `_private` name is the defining module's business."""
    defined = _private_definitions()
    found = []
    for path in _python_files():
        uses = _private_uses(path.read_text(encoding="utf8"), _module_of(path), defined)
        found += [f"{path.relative_to(ROOT)}: {use}" for use in uses]
    assert found == []


def test_the_reading_tests_can_fail():
    defined = _private_definitions()
    assert "spacy_bertprod.transformer_model" in defined["_forward"]
    bad = "from spacy_bertprod.transformer_model import _forward\nx = trf._forward\n"
    assert _private_uses(bad, "spacy_bertprod.benchmark", defined) == ["_forward (1)", "_forward (2)"]
    assert _private_uses(bad, "spacy_bertprod.transformer_model", defined) == []


def test_every_import_of_the_package_names_a_module_of_it():
    """A module moved to another package leaves no import (lazy ones included) pointing at its old place."""
    missing = []
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("spacy_bertprod"):
                base = node.module
            else:
                continue
            if base not in MODULES:
                missing.append(f"{module}:{node.lineno} {base}")
    assert missing == []
