"""The official alipay-sdk-python, driven as our reference (dev dependency only).

Its ``DefaultAlipayClient`` stamps requests with ``datetime.datetime.now()`` in the process's own
zone; ``frozen_sdk_clock`` pins that to the Shanghai wall-clock time we sign with, so the two
outputs can be compared for the same inputs and timestamp.
"""
from __future__ import annotations

import contextlib
import datetime as real_datetime
import html
import re
import types
from typing import Dict, Iterator, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

import alipay.aop.api.DefaultAlipayClient as sdk_client_module
from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.domain.AlipayTradeAppPayModel import AlipayTradeAppPayModel
from alipay.aop.api.domain.AlipayTradePagePayModel import AlipayTradePagePayModel
from alipay.aop.api.domain.AlipayTradeWapPayModel import AlipayTradeWapPayModel
from alipay.aop.api.request.AlipayTradeAppPayRequest import AlipayTradeAppPayRequest
from alipay.aop.api.request.AlipayTradePagePayRequest import AlipayTradePagePayRequest
from alipay.aop.api.request.AlipayTradeWapPayRequest import AlipayTradeWapPayRequest

from shared.domain import clock


@contextlib.contextmanager
def frozen_sdk_clock(at: real_datetime.datetime) -> Iterator[None]:
    """Make the SDK's ``datetime.datetime.now()`` return ``at`` as Shanghai wall-clock time."""
    wall = at.astimezone(clock.SHANGHAI).replace(tzinfo=None)

    class FrozenDatetime(real_datetime.datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: D401 - mirrors datetime.now
            return wall

    fake = types.SimpleNamespace(datetime=FrozenDatetime)
    original = sdk_client_module.datetime
    sdk_client_module.datetime = fake
    try:
        yield
    finally:
        sdk_client_module.datetime = original


def sdk_client(app_id: str, pkcs1_private_base64: str, alipay_public_base64: str = "") -> DefaultAlipayClient:
    config = AlipayClientConfig()
    config.app_id = app_id
    config.app_private_key = pkcs1_private_base64  # the SDK takes a bare PKCS#1 body
    config.alipay_public_key = alipay_public_base64  # verifies gateway answers in ``execute``
    config.sign_type = "RSA2"
    return DefaultAlipayClient(config)


def sdk_app_pay(
    client: DefaultAlipayClient,
    at: real_datetime.datetime,
    *,
    notify_url: str,
    out_trade_no: str,
    total_amount: str,
    subject: str,
    body: Optional[str] = None,
    timeout_express: str = "30m",
) -> str:
    model = AlipayTradeAppPayModel()
    model.out_trade_no = out_trade_no
    model.total_amount = total_amount
    model.subject = subject
    model.product_code = "QUICK_MSECURITY_PAY"
    model.timeout_express = timeout_express
    if body:
        model.body = body
    request = AlipayTradeAppPayRequest(biz_model=model)
    request.notify_url = notify_url
    with frozen_sdk_clock(at):
        return client.sdk_execute(request)


def query_params(query: str) -> Dict[str, str]:
    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    params = dict(pairs)
    assert len(params) == len(pairs), "duplicate parameter"
    return params


# --- page.pay / wap.pay: page_execute's GET URL and POST form ------------------------------------

PAGE_REQUESTS = {
    "alipay.trade.page.pay": (AlipayTradePagePayRequest, AlipayTradePagePayModel),
    "alipay.trade.wap.pay": (AlipayTradeWapPayRequest, AlipayTradeWapPayModel),
}


def sdk_page_execute(
    client: DefaultAlipayClient,
    at: real_datetime.datetime,
    method: str,
    biz: Dict[str, str],
    http_method: str,
    *,
    notify_url: str,
    return_url: Optional[str] = None,
    udf: Optional[Dict[str, str]] = None,
) -> str:
    """``page_execute(request, http_method)`` for page/wap pay; ``udf`` adds extra signed parameters."""
    request_cls, model_cls = PAGE_REQUESTS[method]
    model = model_cls()
    for key, value in biz.items():
        setattr(model, key, value)
    request = request_cls(biz_model=model)
    request.notify_url = notify_url
    if return_url:
        request.return_url = return_url
    if udf:
        request.udf_params = dict(udf)
    with frozen_sdk_clock(at):
        return client.page_execute(request, http_method)


def query(url: str) -> Tuple[str, Dict[str, str]]:
    """``(scheme://host/path, params)`` of a URL; duplicate keys would be a bug, so they fail."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", query_params(parts.query)


_TAG = re.compile(r'<(form|input|script)\b((?:[^>"]|"[^"]*")*)>', re.IGNORECASE)
_ATTR = re.compile(r'([a-zA-Z_-]+)="([^"]*)"')
_CHARREF = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def _attr_value(raw: str) -> str:
    """Decode an attribute as a browser does: only ``;``-terminated references.

    (The SDK leaves ``&`` raw in the action; ``html.unescape`` would read ``&notify_url`` as
    ``¬ify_url``, which HTML5 browsers do not do inside attributes.)
    """
    return _CHARREF.sub(lambda m: html.unescape(m.group(0)), raw)


def form(html_text: str) -> Tuple[str, Dict[str, str], Dict[str, str]]:
    """What a browser would post: ``(gateway, action query params, hidden fields)``."""
    action = method = None
    fields: Dict[str, str] = {}
    scripts = 0
    for tag, attr_text in _TAG.findall(html_text):
        attrs = {k: _attr_value(v) for k, v in _ATTR.findall(attr_text)}
        if tag == "form":
            action, method = attrs["action"], attrs["method"]
        elif tag == "input" and attrs.get("type") == "hidden":
            assert attrs["name"] not in fields
            fields[attrs["name"]] = attrs["value"]
        elif tag == "script":
            scripts += 1
    assert method == "post" and scripts == 1, "not a self-submitting POST form"
    gateway, action_params = query(action)
    return gateway, action_params, fields


# --- notifies and sync returns: Alipay's check rule, as the SDK's README verifies them ---------

def _notify_content(params: Dict[str, str]) -> str:
    """The SDK's ``get_sign_content`` over every field but ``sign`` and ``sign_type``: it drops no
    empty value (Java's ``getSignCheckContentV1`` neither), so a notify's ``body=`` is signed."""
    from alipay.aop.api.util.SignatureUtils import get_sign_content  # noqa: PLC0415

    return get_sign_content({k: v for k, v in params.items() if k not in ("sign", "sign_type")})


def sdk_sign_notify(params: Dict[str, str], alipay_pkcs1_private_base64: str) -> Dict[str, str]:
    """A notify signed as Alipay signs it, by the SDK's code alone (none of ours)."""
    from alipay.aop.api.util.SignatureUtils import sign_with_rsa2  # noqa: PLC0415

    charset = params.get("charset", "utf-8")
    return {**params, "sign_type": "RSA2",
            "sign": sign_with_rsa2(alipay_pkcs1_private_base64, _notify_content(params), charset)}


def sdk_verify_notify(params: Dict[str, str], alipay_public_base64: str) -> bool:
    """The SDK README's notify check: ``verify_with_rsa`` over the check content in its charset."""
    import rsa  # noqa: PLC0415 - the SDK's own RSA library

    from alipay.aop.api.util.SignatureUtils import verify_with_rsa  # noqa: PLC0415

    message = _notify_content(params).encode(params.get("charset", "utf-8"))
    try:
        return verify_with_rsa(alipay_public_base64, message, params["sign"])
    except (rsa.VerificationError, ValueError):
        return False
