"""The house's layout, read from the source: who imports whom (every import, those inside
functions included), where a net is built from saved settings, and how long functions get."""
import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "resnet_gluon")

#: The model modules (the book's net, the family, cell 8) and what they may import: each
#: other, the rules (_checks) and the shipped files' reader (weights), which import nothing
#: above them.
MODEL = {"blocks", "model", "shapes"}
UNDER_MODEL = {"_checks", "weights"}

#: The layers of docs/architecture.md, top first: a module imports its own layer or below.
LAYERS = [
    {"__main__", "cli"},
    {"report"},
    {"train", "evaluate", "quantize", "export", "predict", "pretrained", "visualize", "launch",
     "finetune"},
    {"sources"},
    {"trained"},
    {"run", "distributed", "ema"},
    {"config"},
    {"inputs"},
    {"data", "folders", "images", "recordio", "checkpoint", "precision", "inference", "cpu"},
    {"blocks", "model", "shapes"},
    {"weights", "_checks", "_watchdog"},
]


def _modules():
    """``{module name relative to the package: parsed source}``; a package is its folder."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, PACKAGE)[:-3].replace(os.sep, ".")
                rel = rel[:-len(".__init__")] if rel.endswith(".__init__") else rel
                with open(path, encoding="utf-8") as f:
                    found["" if rel == "__init__" else rel] = ast.parse(f.read(), path)
    return found


def _imports(name, tree, modules):
    """The package's modules that ``name`` imports anywhere in its source."""
    package = name.split(".") if name in modules and _is_package(name) else name.split(".")[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else package
                base = [p for p in base if p]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "resnet_gluon":
                target = node.module[len("resnet_gluon."):] if "." in node.module else ""
            else:
                continue
            for alias in node.names:  # "from . import cpu" imports the module cpu
                sub = f"{target}.{alias.name}" if target else alias.name
                out.add(sub if sub in modules else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "resnet_gluon":
                    out.add(alias.name[len("resnet_gluon."):] if "." in alias.name else "")
    out.discard(name)
    return out


def _is_package(name):
    return os.path.isfile(os.path.join(PACKAGE, *name.split("."), "__init__.py"))


def graph():
    modules = _modules()
    return {name: _imports(name, tree, modules) for name, tree in modules.items()}


def find_cycle(edges):
    """A list of modules that import each other round in a circle, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_circle_through_function_level_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    # What the parser sees: an import inside a function counts as much as one at the top.
    modules = {"model": None, "pretrained": None}
    tree = ast.parse("def f():\n    from .pretrained import load_pretrained\n")
    assert _imports("model", tree, modules) == {"pretrained"}


def test_the_package_has_no_import_circle():
    edges = graph()
    assert {"model", "trained", "train", "cli", "weights"} <= set(edges)  # the parser sees them
    assert "model" in edges["config"] and "trained" in edges["pretrained"]
    cycle = find_cycle({k: v - {""} for k, v in edges.items()})  # "" is the package itself
    assert cycle is None, " -> ".join(cycle)


def test_every_module_has_a_layer_and_imports_run_downward():
    # The package's __init__ ("") is its front door: it runs before any module, imports
    # cpu first (AMX) and the model modules, and any module may read __version__ from it.
    edges = {m: v - {""} for m, v in graph().items() if m}
    layer = {m: i for i, names in enumerate(LAYERS) for m in names}
    assert set(edges) == set(layer), "give each module a layer (here and in the docs)"
    upward = [f"{m} -> {t}" for m, targets in edges.items() for t in targets
              if layer[t] < layer[m]]
    assert not upward, upward


@pytest.mark.parametrize("module", sorted(MODEL | UNDER_MODEL))
def test_the_model_modules_import_nothing_above_them(module):
    allowed = MODEL | UNDER_MODEL if module in MODEL else {"_checks"}
    imported = graph()[module]
    assert imported <= allowed, f"{module} imports {sorted(imported - allowed)}"


def test_a_net_is_built_from_saved_settings_in_one_place():
    # ResNetSpec.build is the one way from a record to a net; outside the model module,
    # nothing calls the factory with settings it read.
    callers = {}
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "build_resnet":
                callers.setdefault(name, []).append(node.lineno)
    assert set(callers) == {"model"}, callers
    assert len(callers["model"]) == 2  # ResNetSpec.build and build_resnet18


def test_the_data_source_is_chosen_in_one_module():
    # One seam: sources.open_source tells Fashion-MNIST from a folder from a .rec, and only
    # sources reads data through the formats' loaders (each format's own module aside).
    loaders = {"load_fashion_mnist": "data", "load_splits": "data",
               "load_image_folder": "folders", "RecordBatches": "recordio",
               "read_pack_info": "recordio"}
    found = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            rec = func == "endswith" and any(isinstance(a, ast.Constant) and a.value == ".rec"
                                             for a in node.args)
            if (rec or func in loaders) and name not in ("sources", loaders.get(func, "recordio")):
                found.append(f"{name}:{node.lineno} {func}")
    assert not found, found


def _code_lines(func, source_lines):
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(
            getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring
    lines = set()
    for node in body:
        for i in range(node.lineno, node.end_lineno + 1):
            text = source_lines[i - 1].strip()
            if text and not text.startswith("#"):
                lines.add(i)
    return len(lines)


def test_no_function_is_longer_than_60_lines_of_code():
    long = []
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                lines = text.splitlines()
                for node in ast.walk(ast.parse(text)):
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        n = _code_lines(node, lines)
                        if n > 60:
                            long.append(f"{os.path.relpath(path, PACKAGE)}:{node.name} ({n})")
    assert not long, long
