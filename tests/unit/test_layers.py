"""shared/ is layered (README "Layout"): each layer imports only the layers below it, and nothing
inside shared/ imports in a circle. Read from the source (every import statement, including the
deferred ones inside functions and those under TYPE_CHECKING), so a lazy import cannot hide one.

    shared.domain   money, time, orders, validation, catalog: the standard library only
    shared.alipay   Alipay's protocol: the standard library, cryptography, shared.domain
    shared.aws      the only place that imports boto3/botocore: and shared.domain
    shared.*        the use cases the handlers call: any of the above
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}

# layer -> (shared packages it may import besides itself, third-party top-level packages it may import)
RULES = {
    "shared.domain": (set(), set()),
    "shared.alipay": ({"shared.domain"}, {"cryptography"}),
    "shared.aws": ({"shared.domain"}, {"boto3", "botocore"}),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    base = ROOT / name.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def imports_of(path: Path) -> Set[str]:
    """Every module ``path`` imports, absolute; ``from pkg import name`` counts as ``pkg.name``
    when that is a module of this project."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            subs = [f"{base}.{alias.name}" for alias in node.names if is_module(f"{base}.{alias.name}")]
            found.update(subs or [base])
    return found


SOURCES: Dict[str, Set[str]] = {module_name(p): imports_of(p) for p in sorted(SHARED.rglob("*.py"))}


def layer_of(module: str) -> str:
    for layer in RULES:
        if module == layer or module.startswith(layer + "."):
            return layer
    return "shared"


def test_the_layers_exist_and_the_reader_sees_real_imports():
    assert {layer_of(m) for m in SOURCES} == {"shared", *RULES}
    assert "shared.domain.money" in SOURCES["shared.alipay.notify"]  # relative imports resolved
    assert "boto3" in SOURCES["shared.aws.repository"]  # deferred imports seen


@pytest.mark.parametrize("layer", sorted(RULES))
def test_a_layer_imports_only_what_lies_below_it(layer):
    allowed_packages, allowed_third_party = RULES[layer]
    wrong: List[str] = []
    for module, imported in SOURCES.items():
        if layer_of(module) != layer:
            continue
        for name in imported:
            top = name.split(".")[0]
            if top == "shared":
                if name == "shared":
                    wrong.append(f"{module} -> {name}")
                elif layer_of(name) != layer and not any(name == p or name.startswith(p + ".") for p in allowed_packages):
                    wrong.append(f"{module} -> {name}")
            elif top not in STDLIB and top not in allowed_third_party:
                wrong.append(f"{module} -> {name}")
    assert wrong == []


def test_nothing_below_the_adapters_imports_aws_and_the_domain_knows_no_wire_format():
    for module, imported in SOURCES.items():
        if layer_of(module) in ("shared.domain", "shared.alipay"):
            assert not {n for n in imported if n.split(".")[0] in ("boto3", "botocore") or n.startswith("shared.aws")}, module
        if layer_of(module) == "shared.domain":
            assert not {n for n in imported if n.startswith("shared.alipay") or n == "cryptography" or n.startswith("cryptography.")}, module


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (or a module importing itself)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
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
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_shared():
    # the package itself (shared/__init__ sets up logging) is every module's parent, not a dependency
    graph = {m: {n for n in imported if n.startswith("shared.") and n in SOURCES} for m, imported in SOURCES.items()}
    assert cycles(graph) == []
