"""Alipay's RSA2 signing, top to bottom in one place.

1. Keys: the app's private key (PKCS#1 or PKCS#8) and Alipay's public key (SPKI or PKCS#1), each
   as PEM or as the bare base64 body Alipay's console shows. Parsed once by ``config``.
2. Sign content of a request: every parameter but ``sign``, empty values dropped, sorted by key,
   ``k=v`` joined by ``&`` over the raw (not url-encoded) values (the SDKs' ``getSignContent``).
   Check content of a notify or a sync return: every field but ``sign`` and ``sign_type``, sorted,
   **empty values kept** (Alipay's ``rsaCheckV1`` / ``getSignCheckContentV1``): Alipay signs a
   notify's ``body=`` too, so dropping it would refuse genuine notifies and let an empty field be
   added after signing.
3. RSA2 = SHA256withRSA, PKCS#1 v1.5, base64. Deterministic, so two correct signers agree
   byte for byte (the tests hold us to the official SDK's output). The SHA-256 is hashlib's and the
   RSA operation ``cryptography``'s: its own per-call digest set-up cost ~8 µs a signature.

"""
from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from typing import Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

try:
    # The four key loaders are functions of cryptography's Rust core, which its ``serialization``
    # package re-exports. Importing that package also loads its SSH key support (ciphers, EC, Ed25519):
    # ~25 ms of a cold start that compiles the library from source, for nothing we use. Same
    # functions, same arguments (tests/unit/test_signing.py checks they are the very same objects).
    from cryptography.hazmat.bindings._rust import openssl as _rust_openssl

    _loaders = _rust_openssl.keys
except (ImportError, AttributeError):  # a cryptography that moved them: the public way, slower to import
    from cryptography.hazmat.primitives import serialization as _loaders

REQUEST_EXCLUDED = frozenset({"sign"})
_PKCS1V15 = padding.PKCS1v15()  # stateless; made once, not per signature
_SHA256 = hashes.SHA256()
_PREHASHED_SHA256 = Prehashed(_SHA256)
_SELF_TEST = b"alipay-app-pay: this key signs"
NOTIFY_EXCLUDED = frozenset({"sign", "sign_type"})
MIN_KEY_BITS = 2048  # RSA2 keys issued by Alipay's tool are 2048 bits


class KeyFormatError(ValueError):
    """A key could not be read. The message never contains key material."""


# --- 1. keys -----------------------------------------------------------------------------------

_PEM = re.compile(r"-----BEGIN [A-Z ]+-----")


def _der_from_text(text: str) -> bytes:
    """The DER bytes of a bare base64 key body (whitespace and literal ``\\n`` tolerated)."""
    body = re.sub(r"\s+|\\n", "", text)
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError("not PEM and not valid base64") from None


def _pem_text(text: str) -> bytes:
    # Environment variables often carry PEM with escaped newlines.
    return text.strip().replace("\\n", "\n").encode("ascii", "strict")


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """Read the app's RSA private key: PKCS#1 or PKCS#8, PEM or bare base64.

    ``cryptography`` would spend ~40 ms of every cold start proving the key's primes prime
    (OpenSSL's RSA_check_key). That guards against keys crafted by an attacker; this one is our
    own secret from our own configuration, and whoever can replace it can already sign as us.
    What must hold is that the key is whole and signs correctly: its components are checked
    against each other (cheap arithmetic) and it signs a fixed message whose signature must
    verify under its public half (~0.3 ms). OpenSSL also checks every CRT result against the
    public exponent before releasing it, so a damaged key cannot leak a prime in a signature.
    """
    if not text or not text.strip():
        raise KeyFormatError("empty")
    try:
        if _PEM.search(text):
            key = _loaders.load_pem_private_key(
                _pem_text(text), password=None, unsafe_skip_rsa_key_validation=True
            )
        else:
            # load_der_private_key reads both PKCS#8 and the "traditional" PKCS#1 RSAPrivateKey.
            key = _loaders.load_der_private_key(
                _der_from_text(text), password=None, unsafe_skip_rsa_key_validation=True
            )
    except KeyFormatError:
        raise
    except (ValueError, TypeError, UnicodeEncodeError):
        raise KeyFormatError("not a readable unencrypted private key") from None
    key = _require_rsa(key, rsa.RSAPrivateKey)
    if not _consistent(key.private_numbers()) or not _signs_correctly(key):
        raise KeyFormatError("inconsistent RSA key: its parts do not fit together")
    return key


def _consistent(k: rsa.RSAPrivateNumbers) -> bool:
    """RSA_check_key's arithmetic, without its costly primality tests."""
    p, q, n, e, d = k.p, k.q, k.public_numbers.n, k.public_numbers.e, k.d
    return (
        p > 1 and q > 1 and p * q == n
        and d * e % ((p - 1) * (q - 1) // math.gcd(p - 1, q - 1)) == 1
        and k.dmp1 == d % (p - 1) and k.dmq1 == d % (q - 1) and k.iqmp * q % p == 1
    )


def _signs_correctly(key: rsa.RSAPrivateKey) -> bool:
    try:
        signature = key.sign(_SELF_TEST, _PKCS1V15, _SHA256)
        key.public_key().verify(signature, _SELF_TEST, _PKCS1V15, _SHA256)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """Read Alipay's RSA public key: SPKI (``PUBLIC KEY``) or PKCS#1, PEM or bare base64."""
    if not text or not text.strip():
        raise KeyFormatError("empty")
    try:
        if _PEM.search(text):
            key = _loaders.load_pem_public_key(_pem_text(text))
        else:
            # load_der_public_key reads both SubjectPublicKeyInfo and PKCS#1 RSAPublicKey.
            key = _loaders.load_der_public_key(_der_from_text(text))
    except KeyFormatError:
        raise
    except (ValueError, TypeError, UnicodeEncodeError):
        raise KeyFormatError("not a readable public key") from None
    return _require_rsa(key, rsa.RSAPublicKey)


def _require_rsa(key, kind):
    if not isinstance(key, kind):
        raise KeyFormatError("not an RSA key")
    if key.key_size < MIN_KEY_BITS:
        raise KeyFormatError(f"RSA key of {key.key_size} bits; RSA2 needs at least {MIN_KEY_BITS}")
    return key


# --- 2. sign content ---------------------------------------------------------------------------

def sign_content(params: Mapping[str, str], excluded: Iterable[str] = REQUEST_EXCLUDED) -> str:
    """Sorted ``k=v`` pairs joined by ``&``, leaving out excluded keys and empty values."""
    skip = excluded if isinstance(excluded, frozenset) else frozenset(excluded)
    return "&".join([
        f"{key}={value}"
        for key in sorted(params)
        if key not in skip and (value := params[key]) is not None and value != ""
    ])


def check_content(params: Mapping[str, str]) -> str:
    """What Alipay signs in a notify or a sync return: sorted ``k=v`` of every field but ``sign``
    and ``sign_type``, empty values included (Java's ``AlipaySignature.getSignCheckContentV1``)."""
    return "&".join([f"{key}={params[key]}" for key in sorted(params) if key not in NOTIFY_EXCLUDED])


# --- 3. RSA2 ----------------------------------------------------------------------------------

def rsa2_sign(private_key: rsa.RSAPrivateKey, content: str, charset: str = "utf-8") -> str:
    """SHA256withRSA (PKCS#1 v1.5) over ``content`` encoded in ``charset``, base64."""
    digest = hashlib.sha256(content.encode(charset)).digest()
    signature = private_key.sign(digest, _PKCS1V15, _PREHASHED_SHA256)
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(public_key: rsa.RSAPublicKey, content: str, sign: str, charset: str = "utf-8") -> bool:
    """True when ``sign`` is a valid RSA2 signature of ``content``; never raises on bad input."""
    try:
        signature = binascii.a2b_base64(sign, strict_mode=True)  # C; b64decode(validate=True) runs a regex
        message = content.encode(charset)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
    try:
        public_key.verify(signature, message, _PKCS1V15, _SHA256)
    except InvalidSignature:
        return False
    return True


def sign_params(private_key: rsa.RSAPrivateKey, params: Mapping[str, str], charset: str = "utf-8") -> str:
    """The ``sign`` value of a request: RSA2 over its request sign content."""
    return rsa2_sign(private_key, sign_content(params, REQUEST_EXCLUDED), charset)
