"""Build the Lambda layer of third-party runtime dependencies (requirements.txt) for Lambda's
platform, not this machine's: ``pip install --platform manylinux2014_<arch> --only-binary=:all:
--python-version <runtime's>`` into ``.build/layer-<arch>/python`` (where Lambda puts layers on
sys.path), one folder per architecture so switching LAMBDA_ARCH does not rebuild the other.

Called by ``make layer`` and by the ``offline-package`` plugin before every package/deploy; a
stamp (requirements + target) skips the install when nothing changed.

    python deploy/build_layer.py --python-version 3.12 --arch arm64
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
BUILD = ROOT / ".build"
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}


def build(python_version: str, arch: str, out: Path | None = None) -> Path:
    platform = PLATFORMS[arch]
    out = out or BUILD / f"layer-{arch}"
    stamp = out / ".stamp"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes() + f"{python_version} {platform}".encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return out
    shutil.rmtree(out, ignore_errors=True)
    target = out / "python"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--platform", platform, "--only-binary=:all:", "--implementation", "cp",
            "--python-version", python_version, "--target", str(target), "-r", str(REQUIREMENTS),
        ],
        check=True,
    )
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: nothing runs them on Lambda
    stamp.write_text(wanted)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the runtime-dependencies layer for Lambda.")
    parser.add_argument("--python-version", required=True, help="the Lambda runtime's, e.g. 3.12")
    parser.add_argument("--arch", default="arm64", choices=sorted(PLATFORMS))
    args = parser.parse_args()
    print(f"layer: {build(args.python_version, args.arch).relative_to(ROOT)} for python{args.python_version} {args.arch}")


if __name__ == "__main__":
    main()
