"""The project files a Lambda function needs: its handler and everything it imports from shared/
and functions/, transitively (every import statement, deferred ones included), so each zip
ships exactly its own code. The packaging plugin (deploy/offline-package.js) and
tests/functional/test_package.py both use it.

    python3 deploy/function_files.py functions/pay/handler.py [...]   # JSON: handler -> files
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set

ROOT = Path(__file__).resolve().parents[1]
OWN = ("shared/", "functions/")


def project_imports(path: Path, seen: Optional[Set[str]] = None) -> Set[str]:
    """The project files ``path`` needs (relative, posix): its shared/ and functions/ imports,
    transitively, with every parent package's ``__init__.py``."""
    seen = set() if seen is None else seen
    package = path.parent.relative_to(ROOT).as_posix().replace("/", ".")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: up (level - 1) packages from this file's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            modules = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parents = [".".join(module.split(".")[:n]) for n in range(1, module.count(".") + 1)]
            candidates = [ROOT / p.replace(".", "/") / "__init__.py" for p in parents]
            candidates += [ROOT / (module.replace(".", "/") + ".py"), ROOT / module.replace(".", "/") / "__init__.py"]
            for candidate in candidates:
                rel = candidate.relative_to(ROOT).as_posix()
                if candidate.exists() and rel.startswith(OWN) and rel not in seen:
                    seen.add(rel)
                    project_imports(candidate, seen)
    return seen


def function_files(handler: str) -> List[str]:
    """Everything the handler file needs, itself and its package's ``__init__.py`` files included."""
    path = ROOT / handler
    return sorted(project_imports(path) | {path.relative_to(ROOT).as_posix()})


def main(argv: List[str]) -> None:
    found: Dict[str, List[str]] = {handler: function_files(handler) for handler in argv}
    print(json.dumps(found))


if __name__ == "__main__":
    main(sys.argv[1:])
