"""Certificate mode: Alipay's SNs, the root bundle rule, and the config that reads the three files."""
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes

from local import certs
from local.alipay import KeyPair
from shared.alipay import cert, signing
from shared import config


@pytest.fixture(scope="module")
def files(app_keys, alipay_keys):
    return certs.CertFiles.generate(app_keys.private_key, alipay_keys.private_key)


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


CLASS2 = "CN=Ant Financial Certification Authority Class 2 R1,OU=Certification Authority,O=Ant Financial,C=CN"


def test_cert_sn_is_md5_of_reversed_issuer_and_decimal_serial(files):
    # Written out by hand from how local.certs names the CA (C, O, OU, CN in the certificate).
    assert cert.issuer_name(files.app) == CLASS2
    assert cert.cert_sn(files.app) == md5(CLASS2 + str(files.app.serial_number))
    assert cert.is_sn(cert.cert_sn(files.app))


def test_serial_is_decimal_not_hex(app_keys):
    ca = KeyPair.generate().private_key
    issuer = certs.name("X CA")
    one = certs.issue(certs.name("leaf"), app_keys.public_key, issuer, ca, serial=0xABCDEF)
    assert cert.cert_sn(one) == md5("CN=X CA,OU=Certification Authority,O=Ant Financial,C=CN" + "11259375")


def test_root_sn_joins_only_sha1_and_sha256_rsa_roots_in_file_order(files):
    sha1_root, ec_root, sha256_root = files.roots
    expected = f"{cert.cert_sn(sha1_root)}_{cert.cert_sn(sha256_root)}"
    assert cert.alipay_root_cert_sn(files.root_cert) == expected
    assert cert.cert_sn(ec_root) not in cert.alipay_root_cert_sn(files.root_cert)


def test_a_sha512_rsa_root_is_left_out_too(files):
    key = KeyPair.generate().private_key
    other = certs.name("Other Root")
    sha512 = certs.issue(other, key.public_key(), other, key, ca=True, algorithm=hashes.SHA512())
    bundle = files.root_cert + "\n" + certs.pem(sha512)
    assert cert.alipay_root_cert_sn(bundle) == cert.alipay_root_cert_sn(files.root_cert)


def test_a_bundle_without_rsa_roots_is_refused(files):
    with pytest.raises(cert.CertFormatError):
        cert.alipay_root_cert_sn(certs.pem(files.roots[1]))


@pytest.mark.parametrize("shape", ["blank-lines", "no-blank-lines", "escaped-newlines", "file"])
def test_pem_bundles_read_in_every_shape(files, tmp_path, shape):
    text = files.root_cert
    if shape == "no-blank-lines":
        text = text.replace("\n\n", "\n")
    elif shape == "escaped-newlines":
        text = text.replace("\n", "\\n")
    elif shape == "file":
        path = tmp_path / "alipayRootCert.crt"
        path.write_text(files.root_cert)
        text = str(path)
    assert [c.serial_number for c in cert.load_certificates(text)] == [c.serial_number for c in files.roots]


@pytest.mark.parametrize("bad", ["not a cert", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "/nonexistent/x.crt"])
def test_unreadable_certificates_raise_without_echoing_them(bad):
    with pytest.raises(cert.CertFormatError) as info:
        cert.load_certificates(bad)
    assert "AAAA" not in str(info.value)


def test_alipay_cert_is_the_first_of_its_file_and_carries_alipays_key(files, alipay_keys):
    got = cert.alipay_cert(files.alipay_cert)
    assert got.sn == cert.cert_sn(files.alipay) and len(cert.load_certificates(files.alipay_cert)) == 2
    assert got.public_key.public_numbers() == alipay_keys.public_key.public_numbers()
    sign = signing.rsa2_sign(alipay_keys.private_key, "a=1")
    assert signing.rsa2_verify(got.public_key, "a=1", sign)


# --- config ---------------------------------------------------------------------------------------

def settings(app_keys, **env):
    base = {"ALIPAY_APP_ID": "2021000000000001", "ALIPAY_APP_PRIVATE_KEY": app_keys.private_pem()}
    return config.Settings({**base, **env})


def test_config_in_certificate_mode(files, app_keys, alipay_keys):
    cfg = settings(
        app_keys, ALIPAY_APP_CERT=files.app_cert, ALIPAY_ROOT_CERT=files.root_cert, ALIPAY_CERT=files.alipay_cert
    )
    assert cfg.cert_sn == cert.CertSN(cert.cert_sn(files.app), cert.alipay_root_cert_sn(files.root_cert))
    assert cfg.alipay_public_key.public_numbers() == alipay_keys.public_key.public_numbers()
    assert cfg.alipay_cert_sn == cert.cert_sn(files.alipay)


def test_config_in_public_key_mode_has_no_certificates(app_keys, alipay_keys):
    cfg = settings(app_keys, ALIPAY_PUBLIC_KEY=alipay_keys.public_pem())
    assert cfg.cert_sn is None and cfg.alipay_cert is None and cfg.alipay_cert_sn is None
    assert cfg.alipay_public_key.public_numbers() == alipay_keys.public_key.public_numbers()


@pytest.mark.parametrize("case, variable", [
    ("root-missing", "ALIPAY_ROOT_CERT"),
    ("root-garbage", "ALIPAY_ROOT_CERT"),
    ("app-cert-of-another-key", "ALIPAY_APP_CERT"),
    ("app-cert-garbage", "ALIPAY_APP_CERT"),
])
def test_bad_request_certificates_name_the_variable(files, app_keys, case, variable):
    env = {"ALIPAY_APP_CERT": files.app_cert, "ALIPAY_ROOT_CERT": files.root_cert}
    if case == "root-missing":
        del env["ALIPAY_ROOT_CERT"]
    elif case == "root-garbage":
        env["ALIPAY_ROOT_CERT"] = "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----"
    elif case == "app-cert-of-another-key":
        env["ALIPAY_APP_CERT"] = files.alipay_cert
    else:
        env["ALIPAY_APP_CERT"] = "garbage"
    with pytest.raises(config.ConfigError) as info:
        settings(app_keys, **env).cert_sn
    assert info.value.variable == variable


def test_in_certificate_mode_the_certificates_key_wins_over_a_public_key(files, app_keys, alipay_keys):
    stale = KeyPair.generate()
    cfg = settings(app_keys, ALIPAY_CERT=files.alipay_cert, ALIPAY_PUBLIC_KEY=stale.public_pem())
    assert cfg.alipay_public_key.public_numbers() == alipay_keys.public_key.public_numbers()


def test_a_relative_certificate_path_is_read_from_the_code_root_not_the_cwd(files, app_keys, tmp_path, monkeypatch):
    """Deployments name the packaged file (``certs/alipayRootCert.crt``): it is found next to the
    code, as PRODUCT_CATALOG is, wherever the process happens to run."""
    root = tmp_path / "task"
    (root / "certs").mkdir(parents=True)
    for name, text in (("alipayRootCert.crt", files.root_cert), ("appCertPublicKey.crt", files.app_cert),
                       ("alipayCertPublicKey_RSA2.crt", files.alipay_cert)):
        (root / "certs" / name).write_text(text)
    monkeypatch.setattr(config, "CODE_ROOT", str(root))
    monkeypatch.chdir(tmp_path)
    cfg = settings(app_keys, ALIPAY_APP_CERT="certs/appCertPublicKey.crt", ALIPAY_ROOT_CERT="certs/alipayRootCert.crt",
                   ALIPAY_CERT="certs/alipayCertPublicKey_RSA2.crt")
    assert cfg.cert_sn == cert.CertSN(cert.cert_sn(files.app), cert.alipay_root_cert_sn(files.root_cert))
    assert cfg.alipay_cert_sn == cert.alipay_cert(files.alipay_cert).sn
    with pytest.raises(cert.CertFormatError):  # the protocol layer alone reads from where it is told
        cert.alipay_root_cert_sn("certs/alipayRootCert.crt")
