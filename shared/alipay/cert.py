"""Public-key-certificate mode (公钥证书模式): the SNs Alipay wants on requests, the key it signs with.

In this mode the app is identified by certificates instead of bare keys. Requests carry
``app_cert_sn`` (our app public-key certificate) and ``alipay_root_cert_sn`` (Alipay's root bundle);
Alipay's signatures are checked with the key inside Alipay's public-key certificate, whose SN
Alipay names as ``alipay_cert_sn`` on responses.

Alipay's SN of a certificate is ``md5_hex(issuer + decimal serial)``, the issuer written as Java's
``X500Principal.getName()`` writes it (RFC 2253: RDNs in reverse order, ``CN=...,OU=...,O=...,C=...``).
The root SN joins with ``_`` the SNs of the bundle's certificates signed with sha1WithRSA or
sha256WithRSA; the bundle's other (SM2) certificates are left out.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from . import signing

ROOT_SIGNATURE_ALGORITHMS = frozenset({SignatureAlgorithmOID.RSA_WITH_SHA1, SignatureAlgorithmOID.RSA_WITH_SHA256})
_PEM_CERT = "-----BEGIN CERTIFICATE-----"
_SN_RE = re.compile(r"^[0-9a-f]{32}$")


class CertFormatError(signing.KeyFormatError):
    """A certificate could not be read or does not fit its role. No certificate text in the message."""


def read_text(value: str, root: Optional[str] = None) -> str:
    """PEM text, or the path of a PEM file shipped with the function.

    Lambda's environment holds 4 KB in all; Alipay's root bundle alone is about that, so a
    deployment may name a file (relative to ``root``, the task root configuration hands in, e.g.
    ``certs/alipayRootCert.crt``, which serverless.yml packages) instead of inlining the PEM.
    """
    if _PEM_CERT in value:
        return value.strip().replace("\\n", "\n")
    path = Path(value.strip())
    if root is not None and not path.is_absolute():
        path = Path(root) / path
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError, ValueError):
        raise CertFormatError("neither PEM text nor a readable PEM file") from None
    if _PEM_CERT not in text:
        raise CertFormatError("the file holds no PEM certificate")
    return text


def load_certificates(value: str) -> List[x509.Certificate]:
    """Every certificate of a PEM bundle, in file order (blank lines between them or not)."""
    try:
        certs = x509.load_pem_x509_certificates(read_text(value).encode("ascii"))
    except CertFormatError:
        raise
    except (ValueError, UnicodeEncodeError):
        raise CertFormatError("not a readable PEM certificate") from None
    if not certs:  # pragma: no cover - load_pem_x509_certificates raises on none
        raise CertFormatError("no certificate")
    return certs


def issuer_name(cert: x509.Certificate) -> str:
    """The issuer as Alipay's SDKs format it (RFC 2253 order: most specific RDN first)."""
    return cert.issuer.rfc4514_string()


def cert_sn(cert: x509.Certificate) -> str:
    """Alipay's SN of one certificate: MD5 hex of issuer string + decimal serial number."""
    return hashlib.md5((issuer_name(cert) + str(cert.serial_number)).encode("utf-8")).hexdigest()


def root_cert_sn(certs: Sequence[x509.Certificate]) -> str:
    """``alipay_root_cert_sn``: the SNs of the RSA-signed (sha1/sha256) roots, joined by ``_``."""
    sns = [cert_sn(c) for c in certs if c.signature_algorithm_oid in ROOT_SIGNATURE_ALGORITHMS]
    if not sns:
        raise CertFormatError("no sha1WithRSA/sha256WithRSA certificate in the root bundle")
    return "_".join(sns)


def is_sn(text: str) -> bool:
    return bool(_SN_RE.match(text))


@dataclass(frozen=True)
class CertSN:
    """What certificate mode adds to every request's common parameters."""

    app_cert_sn: str
    alipay_root_cert_sn: str

    def params(self) -> Dict[str, str]:
        return {"app_cert_sn": self.app_cert_sn, "alipay_root_cert_sn": self.alipay_root_cert_sn}


def app_cert_sn(value: str, private_key: rsa.RSAPrivateKey) -> str:
    """``app_cert_sn`` of the app public-key certificate (PEM text or path).

    The certificate must certify our private key's public half: one for another key would make
    every request fail at Alipay, so it is refused at configuration time.
    """
    app = load_certificates(value)[0]
    if app.public_key().public_numbers() != private_key.public_key().public_numbers():
        raise CertFormatError("its public key is not the app private key's")
    return cert_sn(app)


def alipay_root_cert_sn(value: str) -> str:
    """``alipay_root_cert_sn`` of Alipay's root certificate bundle (PEM text or path)."""
    return root_cert_sn(load_certificates(value))


@dataclass(frozen=True)
class AlipayCert:
    """Alipay's public-key certificate: the key that verifies Alipay, and its SN."""

    sn: str
    public_key: rsa.RSAPublicKey


def alipay_cert(value: str) -> AlipayCert:
    """The first certificate of Alipay's public-key certificate file (the rest is its chain)."""
    cert = load_certificates(value)[0]
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < signing.MIN_KEY_BITS:
        raise CertFormatError(f"its key is not RSA of at least {signing.MIN_KEY_BITS} bits")
    return AlipayCert(cert_sn(cert), key)
