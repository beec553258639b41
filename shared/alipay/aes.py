"""Interface content encryption (接口内容加密): ``biz_content`` and answers AES-128-CBC encrypted.

An app whose console turned it on must send every ``biz_content`` encrypted (``encrypt_type=AES``)
and gets its answers' ``<method>_response`` as a base64 string of ciphertext. The scheme is the
official SDKs' (alipay-sdk-python ``EncryptUtils``, alipay-sdk-java ``AlipayEncrypt``): the key is
the console's base64 text of 16 bytes, the IV is 16 zero bytes, padding PKCS#7, base64 standard.
Signing comes after encryption: the request's ``sign`` covers the *encrypted* ``biz_content``,
and an answer's ``sign`` covers the quoted ciphertext exactly as it appears in the body.
"""
from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ENCRYPT_TYPE = "AES"
_BLOCK = 16
_ZERO_IV = bytes(_BLOCK)


class AesError(ValueError):
    """A key or ciphertext that cannot be used. The message never contains key material."""


def load_key(text: str) -> bytes:
    """The console's AES key: base64 of 16 bytes (AES-128; 24 and 32 bytes are accepted as well)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AesError("not valid base64") from None
    if len(key) not in (16, 24, 32):
        raise AesError(f"{len(key)} bytes; an AES key is 16 (or 24, 32)")
    return key


def encrypt(content: str, key: bytes, charset: str = "utf-8") -> str:
    """``content`` encrypted and base64-encoded, as the SDKs put it into ``biz_content``."""
    data = content.encode(charset)
    pad = _BLOCK - len(data) % _BLOCK
    encryptor = Cipher(algorithms.AES(key), modes.CBC(_ZERO_IV)).encryptor()
    return base64.b64encode(encryptor.update(data + bytes([pad]) * pad) + encryptor.finalize()).decode("ascii")


def decrypt(ciphertext: str, key: bytes, charset: str = "utf-8") -> str:
    """The plain text of a base64 ciphertext; ``AesError`` when it is not ours or is damaged."""
    try:
        data = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError):
        raise AesError("ciphertext is not valid base64") from None
    if not data or len(data) % _BLOCK:
        raise AesError("ciphertext is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(_ZERO_IV)).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise AesError("bad padding: another key, or damaged ciphertext")
    try:
        return plain[:-pad].decode(charset)
    except UnicodeDecodeError:
        raise AesError(f"plain text is not {charset}") from None
