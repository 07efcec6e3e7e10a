"""The package's layering, read from its own imports (AST, function-level imports included):
no import cycles, and nothing on the serving path reaches torch, transformers or onnx."""

import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parents[1] / "spacy_bertprod"
TRAINING_LIBRARIES = ("torch", "transformers", "onnx", "spacy_transformers", "safetensors")
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
# Function or class bodies longer than this are hard to read at once.
MAX_BODY_LINES = 120
# ...except these, and why: spaCy's TrainablePipe contract (listeners, predict, update, initialize,
# to/from disk and bytes) in one class, as spacy-transformers' Transformer; every method is short.
LONG_ON_PURPOSE = {"spacy_bertprod.component.BertprodTransformer"}


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


def _long_bodies() -> List[str]:
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                lines = node.end_lineno - node.body[0].lineno + 1
                if lines > MAX_BODY_LINES and f"{module}.{node.name}" not in LONG_ON_PURPOSE:
                    found.append(f"{module}.{node.name} ({lines} lines)")
    return found


def test_no_function_or_class_longer_than_the_limit():
    assert _long_bodies() == []
