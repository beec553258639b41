"""The floor: the least any Python implementation must do per orderStr and per notify.

These two functions are not the backend and nothing imports them but the bench. They do only what
no implementation can skip — JSON-encode the order, sign, url-encode; percent-decode, split,
sort, verify — with every constant of the request precomputed and no validation, no checks and no
error handling at all. Measured beside ours and openssl, they show how much of a ratio belongs to
CPython + ``cryptography`` and how much to our code: a goal under the floor is out of reach for
any implementation built on them.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from datetime import datetime
from typing import Callable, Optional

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from shared.domain import clock, money
from shared.alipay import urlcode

_PKCS1V15 = padding.PKCS1v15()
_PREHASHED = Prehashed(hashes.SHA256())
_SHA256 = hashes.SHA256()
_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_ESCAPED_KEY = re.compile(rb"&[^&=%]*+%")


def app_pay_floor(app_id: str, private_key: rsa.RSAPrivateKey, notify_url: str) -> Callable[..., str]:
    """``orderstr.app_pay`` reduced to its unavoidable work, the request's fixed parts made once.

    Sign content (keys sorted): app_id, biz_content, charset, format, method, notify_url,
    sign_type, timestamp, version; only biz_content and timestamp change between orders.
    """
    content_head = f"app_id={app_id}&biz_content="
    content_middle = (f"&charset=utf-8&format=json&method=alipay.trade.app.pay&notify_url={notify_url}"
                      "&sign_type=RSA2&timestamp=")
    query_head = (f"app_id={app_id}&method=alipay.trade.app.pay&format=json&charset=utf-8&sign_type=RSA2"
                  "&timestamp=")
    query_middle = f"&version=1.0&notify_url={urlcode.quote_plus(notify_url)}&biz_content="

    def build(out_trade_no: str, cents: int, subject: str, body: str, at: Optional[datetime] = None) -> str:
        biz = _JSON.encode({"body": body, "out_trade_no": out_trade_no, "product_code": "QUICK_MSECURITY_PAY",
                            "subject": subject, "timeout_express": "30m", "total_amount": money.cents_to_yuan(cents)})
        timestamp = clock.alipay_timestamp(at)
        content = f"{content_head}{biz}{content_middle}{timestamp}&version=1.0"
        signature = private_key.sign(hashlib.sha256(content.encode()).digest(), _PKCS1V15, _PREHASHED)
        sign = base64.b64encode(signature).decode("ascii")
        return (f"{query_head}{timestamp.replace(' ', '+').replace(':', '%3A')}{query_middle}"
                f"{urlcode.quote_plus(biz)}&sign={sign.replace('+', '%2B').replace('/', '%2F').replace('=', '%3D')}")

    return build


def verify_floor(public_key: rsa.RSAPublicKey) -> Callable[[bytes], bool]:
    """``notify.verify_notify`` reduced to its unavoidable work: a utf-8 body, no checks at all.

    The one scan kept is the escaped-key test, without which splitting the decoded body is wrong.
    """

    def verify(raw: bytes) -> bool:
        if _ESCAPED_KEY.search(b"&" + raw):
            raise ValueError("the floor decodes plain bodies only")
        params = dict([field.split("=", 1) for field in urlcode.unquote_plus_bytes(raw).decode().split("&")])
        content = "&".join([f"{k}={params[k]}" for k in sorted(params) if k != "sign" and k != "sign_type"])
        try:
            public_key.verify(binascii.a2b_base64(params["sign"]), content.encode(), _PKCS1V15, _SHA256)
        except Exception:  # noqa: BLE001 - the floor answers yes or no, nothing else
            return False
        return True

    return verify
