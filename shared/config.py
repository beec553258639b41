"""Configuration from environment variables, read lazily and parsed once per container.

Each handler asks ``settings().require(...)`` for exactly what it needs before it writes
anything, so a missing or malformed variable fails the first request with a ``ConfigError``
that names the variable, never its value. Parsed keys live on the cached ``Settings`` object,
so a warm container signs without re-reading PEM.
"""
from __future__ import annotations

import os
import re
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple

from cryptography.hazmat.primitives.asymmetric import rsa

from . import secrets
from .alipay import signing
from .environment import ConfigError, int_setting

if TYPE_CHECKING:
    from .alipay import cert
    from .domain.catalog import Catalog

APP_ID = "ALIPAY_APP_ID"
APP_PRIVATE_KEY = "ALIPAY_APP_PRIVATE_KEY"
ALIPAY_PUBLIC_KEY = "ALIPAY_PUBLIC_KEY"
NOTIFY_URL = "ALIPAY_NOTIFY_URL"
SELLER_ID = "ALIPAY_SELLER_ID"
ORDER_TABLE = "ORDER_TABLE"
IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"
IDEMPOTENCY_TTL = "IDEMPOTENCY_TTL_SECONDS"
PRODUCT_CATALOG = "PRODUCT_CATALOG"
CODE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the Lambda task root (os.path: pathlib costs cold-start ms)
RETURN_URL = "ALIPAY_RETURN_URL"
GATEWAY_URL = "ALIPAY_GATEWAY_URL"
APP_CERT = "ALIPAY_APP_CERT"  # certificate mode: app public-key certificate (PEM text or file path)
ALIPAY_CERT = "ALIPAY_CERT"  # certificate mode: Alipay public-key certificate
ROOT_CERT = "ALIPAY_ROOT_CERT"  # certificate mode: Alipay root certificate bundle
EVENT_BUS_NAME = "EVENT_BUS_NAME"  # order events: the stage's EventBridge bus (shared/order_events.py)
EVENT_SOURCE = "EVENT_SOURCE"  # order events: their ``source`` (the service name)

_APP_ID_RE = re.compile(r"^\d{16}$")
_SELLER_ID_RE = re.compile(r"^2088\d{12}$")
_URL_RE = re.compile(r"^https?://[^\s/?#]+[^\s]*$")
_TABLE_RE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_BUS_RE = re.compile(r"^[A-Za-z0-9._-]{1,256}$")  # an EventBridge bus name (not an ARN)
_SOURCE_RE = re.compile(r"^[A-Za-z0-9._-]{1,256}$")


class Settings:
    """The deployment's settings. Attribute access validates, and caches only successes."""

    def __init__(self, environ: Optional[Mapping[str, str]] = None) -> None:
        self._env = os.environ if environ is None else environ
        self._keys: Dict[str, Tuple[str, Any]] = {}

    def _raw(self, name: str) -> str:
        value = self._env.get(name, "").strip()
        if not value:
            raise ConfigError(name, "missing")
        return value

    def _matching(self, name: str, pattern: re.Pattern, what: str) -> str:
        value = self._raw(name)
        if not pattern.match(value):
            raise ConfigError(name, f"malformed (expected {what})")
        return value

    @cached_property
    def app_id(self) -> str:
        return self._matching(APP_ID, _APP_ID_RE, "the 16-digit app id")

    def _key(self, variable: str, load: Callable[[str], Any]) -> Any:
        """The parsed key, from the environment, SSM or Secrets Manager (shared/secrets.py).

        The text is re-read through the secrets cache (a dict lookup when warm); it is parsed
        again only when it changed, i.e. once per container and rotation.
        """

        text, source = secrets.key_text(self._env, variable)
        cached = self._keys.get(variable)
        if cached is not None and cached[0] == text:
            return cached[1]
        try:
            key = load(text)
        except signing.KeyFormatError as exc:  # cert.CertFormatError included
            raise ConfigError(source, f"malformed ({exc})") from None
        self._keys[variable] = (text, key)
        return key

    @property
    def app_private_key(self) -> rsa.RSAPrivateKey:
        return self._key(APP_PRIVATE_KEY, signing.load_private_key)

    @property
    def alipay_public_key(self) -> rsa.RSAPublicKey:
        if self.alipay_cert is not None:  # certificate mode: the key inside Alipay's certificate
            return self.alipay_cert.public_key
        return self._key(ALIPAY_PUBLIC_KEY, signing.load_public_key)

    @cached_property
    def notify_url(self) -> str:
        return self._url(NOTIFY_URL)

    def _url(self, name: str) -> str:
        value = self._matching(name, _URL_RE, "an http(s) URL")
        if len(value) > 256:
            raise ConfigError(name, "malformed (longer than Alipay's 256 characters)")
        return value

    def _optional(self, name: str, pattern: re.Pattern, what: str) -> Optional[str]:
        if not self._env.get(name, "").strip():
            return None
        return self._matching(name, pattern, what)

    @cached_property
    def seller_id(self) -> Optional[str]:
        """Optional: when set, every notify must carry this seller_id."""
        return self._optional(SELLER_ID, _SELLER_ID_RE, "a 2088-prefixed 16-digit id")

    @cached_property
    def order_table(self) -> str:
        return self._matching(ORDER_TABLE, _TABLE_RE, "a DynamoDB table name")

    def _optional_url(self, name: str) -> Optional[str]:
        return self._url(name) if self._env.get(name, "").strip() else None

    @cached_property
    def return_url(self) -> Optional[str]:
        """Optional: where Alipay sends the browser after page/wap pay (the pay_return route).

        No query string: Alipay appends its signed parameters, and any of ours would spoil the
        signature check on return.
        """
        value = self._optional_url(RETURN_URL)
        if value and ("?" in value or "#" in value):
            raise ConfigError(RETURN_URL, "malformed (no query string or fragment: Alipay appends its own)")
        return value

    @cached_property
    def idempotency_table(self) -> Optional[str]:
        """Optional: the table behind the ``Idempotency-Key`` header (shared/domain/idempotency.py)."""
        return self._optional(IDEMPOTENCY_TABLE, _TABLE_RE, "a DynamoDB table name")

    @cached_property
    def idempotency_ttl(self) -> int:
        """How long an Idempotency-Key is remembered (default one hour, as Powertools does)."""
        return int_setting(self._env, IDEMPOTENCY_TTL, 3600, minimum=60, maximum=7 * 24 * 3600)

    @cached_property
    def catalog(self) -> Optional["Catalog"]:
        """Optional: the product catalog whose prices pay trusts over the client's (shared/domain/catalog.py)."""
        from .domain.catalog import CatalogError, load_catalog  # noqa: PLC0415

        if not self._env.get(PRODUCT_CATALOG, "").strip():
            return None
        from pathlib import Path  # noqa: PLC0415 - only a configured catalog needs it

        path = Path(CODE_ROOT, self._raw(PRODUCT_CATALOG))  # an absolute path stays as it is
        try:
            return load_catalog(path)
        except CatalogError as exc:
            raise ConfigError(PRODUCT_CATALOG, f"malformed ({exc})") from None

    @cached_property
    def gateway_url(self) -> str:
        """Alipay's open-API gateway; https, or http on loopback for the local emulator."""
        from .alipay.gateway import DEFAULT_URL, check_url  # noqa: PLC0415 - only gateway users load http/ssl

        value = self._env.get(GATEWAY_URL, "").strip() or DEFAULT_URL
        try:
            return check_url(value)
        except ValueError as exc:
            raise ConfigError(GATEWAY_URL, f"malformed ({exc})") from None

    # --- certificate mode (shared/alipay/cert.py); None everywhere in public-key mode ------------------

    @cached_property
    def cert_sn(self) -> Optional[cert.CertSN]:
        """``app_cert_sn`` and ``alipay_root_cert_sn`` for requests, when ALIPAY_APP_CERT is set."""
        if not self._env.get(APP_CERT, "").strip():
            return None
        from .alipay import cert  # noqa: PLC0415 - x509 parsing costs cold-start time public-key mode never needs

        key = self.app_private_key
        app_sn = self._key(APP_CERT, lambda value: cert.app_cert_sn(cert.read_text(value, CODE_ROOT), key))
        root_sn = self._key(ROOT_CERT, lambda value: cert.alipay_root_cert_sn(cert.read_text(value, CODE_ROOT)))
        return cert.CertSN(app_sn, root_sn)

    @cached_property
    def alipay_cert(self) -> Optional[cert.AlipayCert]:
        """Alipay's public-key certificate, when ALIPAY_CERT is set. Then its key is Alipay's key,
        whatever ALIPAY_PUBLIC_KEY (or its secret-store form) says: in certificate mode Alipay
        signs with the certificate's key, and deployments set the key variables for every stage."""
        if not self._env.get(ALIPAY_CERT, "").strip():
            return None
        from .alipay import cert  # noqa: PLC0415 - see cert_sn

        return self._key(ALIPAY_CERT, lambda value: cert.alipay_cert(cert.read_text(value, CODE_ROOT)))

    @property
    def alipay_cert_sn(self) -> Optional[str]:
        """The SN Alipay's responses and notifies must name, if they name one (certificate mode)."""
        return self.alipay_cert.sn if self.alipay_cert is not None else None

    @cached_property
    def event_bus_name(self) -> str:
        return self._matching(EVENT_BUS_NAME, _BUS_RE, "an EventBridge bus name")

    @cached_property
    def event_source(self) -> str:
        return self._matching(EVENT_SOURCE, _SOURCE_RE, "an event source name")

    def require(self, *names: str) -> "Settings":
        """Validate the named attributes now (first failure raises), so no later step can."""
        for name in names:
            getattr(self, name)
        return self


_settings: Optional[Settings] = None


def settings() -> Settings:
    """The container-wide settings; created on first use, reused while the container lives."""
    global _settings
    if _settings is None:
        _settings = Settings()
    return _settings


def reset() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    global _settings
    _settings = None
