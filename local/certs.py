"""Playing Alipay's certificate authority: certificate mode's three files, made on the spot.

Alipay's console hands an app in certificate mode three files: the app public-key certificate
(``appCertPublicKey_<appid>.crt``), Alipay's public-key certificate with its chain
(``alipayCertPublicKey_RSA2.crt``) and Alipay's root bundle (``alipayRootCert.crt``: RSA roots
signed with sha1 and sha256, and an SM2 root). ``CertFiles.generate`` makes the same shapes with
``cryptography``'s X.509 builder — an ECDSA root stands in for the SM2 one, which no RSA signer
uses and which every SDK leaves out of ``alipay_root_cert_sn``.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

ANT = "Ant Financial"
CA_OU = "Certification Authority"


def name(cn: str, ou: str = CA_OU, o: str = ANT, c: str = "CN") -> x509.Name:
    """A DN in the order Alipay's certificates hold it (C, O, OU, CN), so RFC 2253 reads CN first."""
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, c),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def issue(
    subject: x509.Name,
    public_key,
    issuer: x509.Name,
    issuer_key,
    *,
    serial: Optional[int] = None,
    ca: bool = False,
    algorithm: Optional[hashes.HashAlgorithm] = None,
) -> x509.Certificate:
    """One certificate; ``algorithm`` picks the signature (sha256 by default)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if isinstance(algorithm, hashes.SHA1):
        return _sha1_signed(builder.sign(issuer_key, hashes.SHA256()), issuer_key)
    return builder.sign(issuer_key, algorithm if algorithm is not None else hashes.SHA256())


_SHA256_RSA_OID = bytes.fromhex("06092a864886f70d01010b")  # 1.2.840.113549.1.1.11
_SHA1_RSA_OID = bytes.fromhex("06092a864886f70d010105")  # 1.2.840.113549.1.1.5, same length


def _sha1_signed(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> x509.Certificate:
    """Re-sign a sha256WithRSA certificate as sha1WithRSA, as Alipay's oldest root is.

    ``cryptography`` no longer signs certificates with SHA-1, so the algorithm identifier (the
    same length in DER) is swapped in the TBS and outer structure and the TBS is signed again;
    the RSA signature keeps its length, so it replaces the last bytes of the DER as is.
    """
    der = cert.public_bytes(serialization.Encoding.DER).replace(_SHA256_RSA_OID, _SHA1_RSA_OID)
    tbs = x509.load_der_x509_certificate(der).tbs_certificate_bytes
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    return x509.load_der_x509_certificate(der[: -len(signature)] + signature)


def pem(*certs: x509.Certificate) -> str:
    """Certificates as one PEM file, a blank line between them as in Alipay's downloads."""
    return "\n".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class CertFiles:
    """The three PEM files of certificate mode, and the certificates they hold."""

    app_cert: str
    alipay_cert: str
    root_cert: str
    app: x509.Certificate
    alipay: x509.Certificate
    roots: Sequence[x509.Certificate]

    @classmethod
    def generate(
        cls,
        app_key: rsa.RSAPrivateKey,
        alipay_key: rsa.RSAPrivateKey,
        *,
        app_id: str = "2021000000000001",
        ca_key: Optional[rsa.RSAPrivateKey] = None,
    ) -> "CertFiles":
        """Roots (sha1WithRSA, ECDSA for SM2, sha256WithRSA), a Class 2 CA under the sha256
        root, and the app's and Alipay's certificates issued by it for the given keys."""
        ca_key = ca_key or _rsa_key()
        sha1_name, sha256_name = name(ANT + " Certification Authority"), name(ANT + " Certification Authority R1")
        ec_key = ec.generate_private_key(ec.SECP256R1())
        ec_name = name(ANT + " Certification Authority E1")
        roots: List[x509.Certificate] = [
            issue(sha1_name, ca_key.public_key(), sha1_name, ca_key, ca=True, algorithm=hashes.SHA1()),
            issue(ec_name, ec_key.public_key(), ec_name, ec_key, ca=True),
            issue(sha256_name, ca_key.public_key(), sha256_name, ca_key, ca=True),
        ]
        class2 = name(ANT + " Certification Authority Class 2 R1")
        intermediate = issue(class2, ca_key.public_key(), sha256_name, ca_key, ca=True)
        app = issue(name(app_id, ou="Alipay Open Platform", o="Example Shop"), app_key.public_key(), class2, ca_key)
        alipay = issue(name("支付宝(中国)网络技术有限公司-" + app_id, ou="Alipay Open Platform", o=ANT),
                       alipay_key.public_key(), class2, ca_key)
        return cls(pem(app), pem(alipay, intermediate), pem(*roots), app, alipay, roots)


FILE_NAMES = {  # the names Alipay's console gives the three downloads
    "ALIPAY_APP_CERT": "appCertPublicKey.crt",
    "ALIPAY_CERT": "alipayCertPublicKey_RSA2.crt",
    "ALIPAY_ROOT_CERT": "alipayRootCert.crt",
}


def local_cert_files(folder: Path, app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey) -> Dict[str, Path]:
    """Certificate mode's three files for the local stack, made once into ``folder`` and kept
    (like the keys), so SNs stay the same across restarts. Returns variable name -> path."""
    paths = {variable: folder / name for variable, name in FILE_NAMES.items()}
    if not all(path.exists() for path in paths.values()) or not _certify(paths, app_key, alipay_key):
        files = CertFiles.generate(app_key, alipay_key)
        folder.mkdir(parents=True, exist_ok=True)
        texts = {"ALIPAY_APP_CERT": files.app_cert, "ALIPAY_CERT": files.alipay_cert, "ALIPAY_ROOT_CERT": files.root_cert}
        for variable, path in paths.items():
            path.write_text(texts[variable], encoding="ascii")
    return paths


def _certify(paths: Dict[str, Path], app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey) -> bool:
    """Whether kept certificates still certify the (possibly regenerated) local keys."""
    def key_of(variable: str):
        return x509.load_pem_x509_certificates(paths[variable].read_bytes())[0].public_key().public_numbers()

    return key_of("ALIPAY_APP_CERT") == app_key.public_key().public_numbers() and (
        key_of("ALIPAY_CERT") == alipay_key.public_key().public_numbers()
    )
