"""Where the keys come from: the environment, SSM Parameter Store or Secrets Manager.

For a key variable ``NAME`` (``ALIPAY_APP_PRIVATE_KEY``, ``ALIPAY_PUBLIC_KEY``) the first set of
these wins:

- ``NAME``: the key itself (PEM or bare base64), e.g. for local runs;
- ``NAME_SSM``: the name of an SSM SecureString parameter holding it (read with decryption);
- ``NAME_SECRET``: a Secrets Manager secret id or ARN whose ``SecretString`` is the key.

Fetched values are cached per container for ``SECRETS_TTL_SECONDS`` (default 300), so a rotated
key is picked up within the TTL without a redeploy, and a warm request makes no AWS call. When a
refresh fails the cached value is kept (a throttled SSM must not fail payments that the key we
hold can still sign); only a container that never read the key fails, as a configuration error.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Tuple

from .environment import ConfigError, int_setting

log = logging.getLogger(__name__)

TTL_VARIABLE = "SECRETS_TTL_SECONDS"
DEFAULT_TTL_SECONDS = 300
SSM_SUFFIX = "_SSM"
SECRET_SUFFIX = "_SECRET"


def _read_ssm(name: str) -> str:
    from .aws.repository import read_ssm_parameter  # noqa: PLC0415 - boto3 only when a key lives in SSM

    return read_ssm_parameter(name)


def _read_secret(secret_id: str) -> str:
    from .aws.repository import read_secret  # noqa: PLC0415

    return read_secret(secret_id)


FETCHERS: Dict[str, Callable[[str], str]] = {SSM_SUFFIX: _read_ssm, SECRET_SUFFIX: _read_secret}


@dataclass
class _Entry:
    value: str
    fetched_at: float


class SecretCache:
    """Fetched secrets by (source, name), each valid for ``ttl`` seconds of ``clock``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: Dict[Tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    def get(self, suffix: str, name: str, ttl: float, variable: str) -> str:
        key = (suffix, name)
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry.fetched_at < ttl:
            return entry.value
        try:
            value = FETCHERS[suffix](name)
        except Exception as exc:  # noqa: BLE001 - any failure to fetch is handled the same way
            if entry is not None:
                log.warning("refreshing %s failed (%s); keeping the cached value", variable, exc)
                return entry.value
            raise ConfigError(variable, f"unavailable ({exc})") from None
        if not value.strip():
            raise ConfigError(variable, "empty at its source")
        with self._lock:
            self._entries[key] = _Entry(value, now)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


cache = SecretCache()


def ttl_seconds(env: Mapping[str, str]) -> float:
    return int_setting(env, TTL_VARIABLE, DEFAULT_TTL_SECONDS)


def key_text(env: Mapping[str, str], variable: str) -> Tuple[str, str]:
    """The text of key ``variable`` and the name of the variable it came through."""
    direct = env.get(variable, "").strip()
    if direct:
        return direct, variable
    for suffix in (SSM_SUFFIX, SECRET_SUFFIX):
        name = env.get(variable + suffix, "").strip()
        if name:
            return cache.get(suffix, name, ttl_seconds(env), variable + suffix), variable + suffix
    raise ConfigError(variable, f"missing (set {variable}, {variable}{SSM_SUFFIX} or {variable}{SECRET_SUFFIX})")

