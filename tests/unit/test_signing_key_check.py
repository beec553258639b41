"""The app's private key loads without cryptography's ~40 ms primality proof, yet must be whole
and sign correctly. A PKCS#1 key is written here field by field so any one field can be damaged.
"""
import base64

import pytest

from local.alipay import KeyPair
from shared.alipay import signing

PAIR_A, PAIR_B = KeyPair.generate(), KeyPair.generate()
KEY_A = PAIR_A.private_key.private_numbers()
FIELDS = ("n", "e", "d", "p", "q", "dmp1", "dmq1", "iqmp")


def _der_int(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_len(len(body)) + body


def _der_len(size: int) -> bytes:
    if size < 128:
        return bytes([size])
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def pkcs1_base64(**overrides: int) -> str:
    values = {"n": KEY_A.public_numbers.n, "e": KEY_A.public_numbers.e} | {
        name: getattr(KEY_A, name) for name in FIELDS[2:]
    } | overrides
    body = _der_int(0) + b"".join(_der_int(values[name]) for name in FIELDS)
    return base64.b64encode(b"\x30" + _der_len(len(body)) + body).decode()


def test_the_hand_written_key_is_the_key():
    assert signing.load_private_key(pkcs1_base64()).private_numbers() == KEY_A


@pytest.mark.parametrize("field", FIELDS)
def test_a_key_with_any_damaged_part_is_refused(field):
    damaged = getattr(KEY_A, field, None) or getattr(KEY_A.public_numbers, field)
    with pytest.raises(signing.KeyFormatError, match="inconsistent"):
        signing.load_private_key(pkcs1_base64(**{field: damaged ^ 0x10}))


def test_a_key_with_another_keys_modulus_is_refused():
    with pytest.raises(signing.KeyFormatError, match="inconsistent"):
        signing.load_private_key(pkcs1_base64(n=PAIR_B.private_key.private_numbers().public_numbers.n))


@pytest.mark.parametrize("field", ["dmp1", "dmq1", "iqmp"])
def test_even_a_damaged_crt_part_never_yields_a_faulty_signature(field):
    """Why skipping the primality proof is safe: OpenSSL checks each CRT result against e and
    recomputes on mismatch, so no damaged key leaks a prime through a signature."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    numbers = rsa.RSAPrivateNumbers(**{
        name: getattr(KEY_A, name) for name in ("p", "q", "d", "dmp1", "dmq1", "iqmp")
    } | {field: getattr(KEY_A, field) ^ 0x10}, public_numbers=KEY_A.public_numbers)
    damaged = numbers.private_key(unsafe_skip_rsa_key_validation=True)
    content = "app_id=2021000000000001&biz_content={}"
    assert signing.rsa2_sign(damaged, content) == signing.rsa2_sign(PAIR_A.private_key, content)
