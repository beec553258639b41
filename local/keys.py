"""Local key pairs (the app's and the emulator's "Alipay"), made on first run and kept.

They live in a git-ignored folder (``.local/keys`` unless ``LOCAL_DIR`` says otherwise), PEM,
readable by the owner only, so a restarted stack still verifies orderStrs signed before.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Tuple

from shared.alipay import signing

from local.alipay import KeyPair

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / ".local"


def local_dir() -> Path:
    return Path(os.environ.get("LOCAL_DIR") or DEFAULT_DIR)


def load_or_generate(path: Path) -> KeyPair:
    """The key pair stored at ``path``; a new RSA-2048 pair written there (0600) when absent."""
    if path.exists():
        return KeyPair(signing.load_private_key(path.read_text(encoding="ascii")))
    pair = KeyPair.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(pair.private_pem())
    return pair


def local_keys(folder: Path | None = None) -> Tuple[KeyPair, KeyPair]:
    """(app key pair, "Alipay" key pair) for the local stack."""
    keys = (folder or local_dir()) / "keys"
    return load_or_generate(keys / "app_private_key.pem"), load_or_generate(keys / "alipay_private_key.pem")


def local_aes_key(folder: Path | None = None) -> bytes:
    """The local app's content-encryption key (16 bytes, kept base64 as Alipay's console shows it)."""
    import base64  # noqa: PLC0415

    path = (folder or local_dir()) / "keys" / "aes_key.txt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(base64.b64encode(os.urandom(16)).decode("ascii"))
    return base64.b64decode(path.read_text(encoding="ascii"))
