"""Key formats, sign content and RSA2, against independent references (rsa package, openssl)."""
import base64
import hashlib
import shutil
import subprocess

import pytest
import rsa as pure_rsa  # the official SDK's own RSA library: an independent signer

from local.alipay import KeyPair
from shared.alipay import signing


def private_forms(keys: KeyPair):
    return {
        "pkcs8-pem": keys.private_pem(pkcs8=True),
        "pkcs1-pem": keys.private_pem(pkcs8=False),
        "pkcs8-base64": keys.private_base64(pkcs8=True),
        "pkcs1-base64": keys.private_base64(pkcs8=False),
        "pkcs1-base64-wrapped": "\n".join(
            keys.private_base64(pkcs8=False)[i:i + 64] for i in range(0, len(keys.private_base64(pkcs8=False)), 64)
        ),
        "pkcs8-pem-escaped-newlines": keys.private_pem().replace("\n", "\\n"),
    }


@pytest.mark.parametrize("form", ["pkcs8-pem", "pkcs1-pem", "pkcs8-base64", "pkcs1-base64", "pkcs1-base64-wrapped",
                                  "pkcs8-pem-escaped-newlines"])
def test_every_private_key_form_loads_to_the_same_key(app_keys, form):
    key = signing.load_private_key(private_forms(app_keys)[form])
    assert key.private_numbers() == app_keys.private_key.private_numbers()


def test_public_key_forms(alipay_keys):
    from cryptography.hazmat.primitives import serialization

    pkcs1_der = alipay_keys.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    pkcs1_pem = alipay_keys.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    for text in (alipay_keys.public_pem(), alipay_keys.public_base64(), base64.b64encode(pkcs1_der).decode(), pkcs1_pem):
        assert signing.load_public_key(text).public_numbers() == alipay_keys.public_key.public_numbers()


@pytest.mark.parametrize("text", ["", "   ", "not base64 !!", "QUJD", "-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----"])
def test_unreadable_private_keys_raise_key_format_error(text):
    with pytest.raises(signing.KeyFormatError):
        signing.load_private_key(text)


def test_public_key_is_not_a_private_key(alipay_keys):
    with pytest.raises(signing.KeyFormatError):
        signing.load_private_key(alipay_keys.public_base64())
    with pytest.raises(signing.KeyFormatError):
        signing.load_public_key(alipay_keys.private_base64())


def test_short_and_non_rsa_keys_are_refused():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ecdsa = ec.generate_private_key(ec.SECP256R1())
    for key in (short, ecdsa):
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        with pytest.raises(signing.KeyFormatError):
            signing.load_private_key(base64.b64encode(der).decode())


def test_key_errors_never_echo_key_material(app_keys):
    broken = app_keys.private_base64()[:-40] + "A" * 40
    with pytest.raises(signing.KeyFormatError) as info:
        signing.load_private_key(broken)
    assert app_keys.private_base64()[:20] not in str(info.value)


def test_sign_content_sorts_drops_empty_and_excluded():
    params = {"b": "2", "a": "1", "sign": "x", "sign_type": "RSA2", "empty": "", "c": "a=b&c"}
    assert signing.sign_content(params) == "a=1&b=2&c=a=b&c&sign_type=RSA2"
    assert signing.sign_content(params, signing.NOTIFY_EXCLUDED) == "a=1&b=2&c=a=b&c"


def test_rsa2_matches_an_independent_pkcs1v15_sha256_signer(app_keys):
    content = "app_id=2021000000000001&biz_content={\"subject\":\"数据\"}&method=alipay.trade.app.pay"
    reference_key = pure_rsa.PrivateKey.load_pkcs1(app_keys.private_pem(pkcs8=False).encode())
    reference = base64.b64encode(pure_rsa.sign(content.encode(), reference_key, "SHA-256")).decode()
    assert signing.rsa2_sign(app_keys.private_key, content) == reference
    assert signing.rsa2_verify(app_keys.public_key, content, reference)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_rsa2_matches_openssl_dgst_sha256(app_keys, tmp_path):
    content = "a=1&b=中文"
    key_file = tmp_path / "app.pem"
    key_file.write_text(app_keys.private_pem())
    out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key_file)], input=content.encode(),
                         capture_output=True, check=True).stdout
    assert signing.rsa2_sign(app_keys.private_key, content) == base64.b64encode(out).decode()


def test_verify_rejects_garbage_without_raising(alipay_keys, app_keys):
    sign = signing.rsa2_sign(alipay_keys.private_key, "a=1")
    assert signing.rsa2_verify(alipay_keys.public_key, "a=1", sign)
    assert not signing.rsa2_verify(alipay_keys.public_key, "a=2", sign)
    assert not signing.rsa2_verify(app_keys.public_key, "a=1", sign)
    for bad in ("", "%%%", "QUJD", sign[:-4]):
        assert not signing.rsa2_verify(alipay_keys.public_key, "a=1", bad)


def test_gbk_content_is_signed_over_gbk_bytes(alipay_keys):
    sign = signing.rsa2_sign(alipay_keys.private_key, "subject=数据恢复", "gbk")
    assert signing.rsa2_verify(alipay_keys.public_key, "subject=数据恢复", sign, "gbk")
    assert not signing.rsa2_verify(alipay_keys.public_key, "subject=数据恢复", sign, "utf-8")


# --- verification refuses every block a correct signer does not make (RFC 8017 §8.2.2) ---------

def _raw_rsa_signature(keys: KeyPair, block: bytes) -> str:
    """Apply the private key to any 256-byte block, as a forger with a signing oracle for raw RSA
    would: lets the tests present blocks no correct signer produces."""
    numbers = keys.private_key.private_numbers()
    n = numbers.public_numbers.n
    value = pow(int.from_bytes(block, "big"), numbers.d, n)
    return base64.b64encode(value.to_bytes(256, "big")).decode()


def _block(digest_info: bytes, *, kind: bytes = b"\x00\x01", fill: bytes = b"\xff") -> bytes:
    return kind + fill * (256 - 3 - len(digest_info)) + b"\x00" + digest_info


SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
SHA1_PREFIX = bytes.fromhex("3021300906052b0e03021a05000414")


def test_a_hand_built_correct_block_verifies(alipay_keys):
    """The control: the construction the next test bends is accepted when it is right."""
    digest = hashlib.sha256(b"a=1").digest()
    assert signing.rsa2_verify(alipay_keys.public_key, "a=1", _raw_rsa_signature(alipay_keys, _block(SHA256_PREFIX + digest)))


@pytest.mark.parametrize("block", [
    pytest.param(lambda d: _block(SHA1_PREFIX + hashlib.sha1(b"a=1").digest()), id="sha1-digest-info"),
    pytest.param(lambda d: _block(d), id="bare-digest-without-digest-info"),
    pytest.param(lambda d: _block(SHA256_PREFIX + d, kind=b"\x00\x02"), id="encryption-padding"),
    pytest.param(lambda d: _block(SHA256_PREFIX + d, fill=b"\xfe"), id="fill-not-ff"),
    pytest.param(lambda d: _block(SHA256_PREFIX + d + b"\x00"), id="trailing-byte"),
    pytest.param(lambda d: _block(SHA256_PREFIX[:-1] + b"\x21" + d + b"\x00"), id="longer-octet-string"),
    pytest.param(lambda d: b"\x00\x01" + b"\xff" * 8 + b"\x00" + SHA256_PREFIX + d + b"\x00" * (256 - 11 - 51),
                 id="garbage-after-digest"),
])
def test_blocks_a_correct_signer_never_makes_are_rejected(alipay_keys, block):
    digest = hashlib.sha256(b"a=1").digest()
    sign = _raw_rsa_signature(alipay_keys, block(digest))
    assert not signing.rsa2_verify(alipay_keys.public_key, "a=1", sign)


def test_key_loaders_are_cryptographys_public_ones():
    """signing reaches the loaders without importing serialization (cold start); they must be the
    functions serialization exports, so this breaks loudly if a cryptography release changes that."""
    from cryptography.hazmat.primitives import serialization

    for name in ("load_pem_private_key", "load_der_private_key", "load_pem_public_key", "load_der_public_key"):
        assert getattr(signing._loaders, name) is getattr(serialization, name)
