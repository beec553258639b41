"""The README's set-up claims, held to what the repository does: `make run` and `make package` never
install the official SDK (a test oracle), the Node.js requirement is the pinned osls's own, and the
SDK's size is what is installed."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Iterator, Set

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SDK = "alipay-sdk-python"


def requirement_lines(name: str) -> Iterator[Requirement]:
    """A requirements file's requirements, following ``-r`` includes."""
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            yield from requirement_lines(line[3:].strip())
        elif line:
            yield Requirement(line)


def key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements) -> Set[str]:
    """Every distribution pip installs for ``requirements``, from the installed metadata (offline)."""
    seen: Set[str] = set()
    todo = [(req.name, frozenset(req.extras)) for req in requirements]
    while todo:
        name, extras = todo.pop()
        if key(name) in seen and not extras:
            continue
        seen.add(key(name))
        for spec in metadata.distribution(name).requires or ():
            req = Requirement(spec)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                todo.append((req.name, frozenset(req.extras)))
    return seen


def test_the_local_stacks_requirements_hold_neither_the_sdk_nor_the_test_tools():
    local = closure(requirement_lines("requirements-local.txt"))
    assert {"moto", "boto3", "pyyaml", "cryptography"} <= local
    assert not local & {SDK, "pycryptodome", "rsa", "pytest", "hypothesis", "flask"}
    assert SDK in closure(requirement_lines("requirements-dev.txt"))


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
@pytest.mark.parametrize("target, installs", [
    ("run", ["requirements-local.txt"]),
    ("demo", ["requirements-local.txt"]),
    ("reconcile", ["requirements-local.txt"]),
    ("invoke", ["requirements-local.txt"]),
    ("package", []),
    ("deploy", []),
    ("test", ["requirements-local.txt", "requirements-dev.txt"]),
    ("bench", ["requirements-local.txt", "requirements-dev.txt"]),
])
def test_each_make_target_installs_only_what_it_needs(tmp_path, target, installs):
    """What a fresh clone's `make <target>` would run (make -n, against a venv that does not exist)."""
    plan = subprocess.run(
        ["make", "-n", "--no-print-directory", target, f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert re.findall(r"pip install .*?-r (\S+)", plan) == installs
    assert f"-m venv {tmp_path / 'venv'}" in plan


def node_requirement() -> str:
    """The pinned osls's Node.js range (package-lock.json), as the README words it."""
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    engines = lock["packages"]["node_modules/osls"]["engines"]["node"]  # ^20.19.0 || ^22.13.0 || >=24
    words = [re.sub(r"\.0$", "", part.strip()).replace(">=", "≥ ") for part in engines.split("||")]
    return "Node.js " + ", ".join(words[:-1]) + " or " + words[-1]


def test_the_readmes_node_requirement_is_the_pinned_osls_ones():
    wanted = node_requirement()
    assert wanted == "Node.js ^20.19, ^22.13 or ≥ 24"
    assert wanted in README
    assert "Node.js ≥ 18" not in README


def installed_sizes(name: str):
    files = [p.locate() for p in metadata.distribution(name).files or ()]
    files = [f for f in files if f.is_file()]
    return len(files), sum(f.stat().st_size for f in files), sum(f.stat().st_blocks * 512 for f in files)


def test_the_readmes_sdk_size_is_the_installed_one():
    try:
        count, apparent, on_disk = installed_sizes(SDK)
    except metadata.PackageNotFoundError:
        pytest.skip("the official SDK is not installed")
    match = re.search(r"official\s+SDK\s+is\s+(\d+)\s+MB\s+in\s+([\d,]+)\s+files\s+\(about\s+(\d+)\s+MB\s+on\s+disk", README)
    assert match, "README states the SDK's size once, in this form"
    stated_mb, stated_files, stated_disk = int(match.group(1)), int(match.group(2).replace(",", "")), int(match.group(3))
    assert abs(apparent / 2**20 - stated_mb) <= 0.05 * stated_mb
    assert abs(count - stated_files) <= 0.05 * stated_files
    if Path(metadata.distribution(SDK).locate_file("")).stat().st_blksize == 4096:  # disk use depends on the block size
        assert abs(on_disk / 2**20 - stated_disk) <= 0.1 * stated_disk
    assert not re.search(r"~?\d+ MB, pure-Python RSA", README)  # the old, different figure is gone
