"""The official alipay-sdk-python as an oracle: the same request built by ``DefaultAlipayClient``.

Its ``datetime.now()`` is frozen to our Shanghai timestamp by patching the module's ``datetime``,
so both sides sign the same content. Used by tests only (the SDK never ships).
"""
from __future__ import annotations

import datetime as real_datetime
import types
import html
import re
from typing import Dict, Optional, Tuple
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

from alipay.aop.api import DefaultAlipayClient as client_module
from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.domain.AlipayTradeAppPayModel import AlipayTradeAppPayModel
from alipay.aop.api.domain.AlipayTradePagePayModel import AlipayTradePagePayModel
from alipay.aop.api.domain.AlipayTradeWapPayModel import AlipayTradeWapPayModel
from alipay.aop.api.request.AlipayTradeAppPayRequest import AlipayTradeAppPayRequest
from alipay.aop.api.request.AlipayTradePagePayRequest import AlipayTradePagePayRequest
from alipay.aop.api.request.AlipayTradeWapPayRequest import AlipayTradeWapPayRequest

from shared import clock

REQUESTS = {
    "alipay.trade.app.pay": (AlipayTradeAppPayRequest, AlipayTradeAppPayModel),
    "alipay.trade.page.pay": (AlipayTradePagePayRequest, AlipayTradePagePayModel),
    "alipay.trade.wap.pay": (AlipayTradeWapPayRequest, AlipayTradeWapPayModel),
}


def frozen_datetime(at: real_datetime.datetime) -> types.SimpleNamespace:
    """A stand-in for the SDK module's ``datetime`` whose ``datetime.now()`` is Shanghai ``at``."""
    wall = at.astimezone(clock.SHANGHAI).replace(tzinfo=None)

    class Frozen(real_datetime.datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ARG003 - the SDK calls now() without tz
            return wall

    return types.SimpleNamespace(datetime=Frozen)


def sdk_client(app_id: str, private_key_pkcs1_base64: str, gateway: str) -> DefaultAlipayClient:
    config = AlipayClientConfig()
    config.server_url = gateway
    config.app_id = app_id
    config.app_private_key = private_key_pkcs1_base64
    return DefaultAlipayClient(config)


def sdk_request(method: str, biz: Dict[str, str], notify_url: str, return_url: Optional[str], udf: Optional[Dict[str, str]] = None):
    request_cls, model_cls = REQUESTS[method]
    model = model_cls()
    for key, value in biz.items():
        setattr(model, key, value)
    request = request_cls(biz_model=model)
    request.notify_url = notify_url
    if return_url:
        request.return_url = return_url
    if udf:
        request.udf_params = dict(udf)
    return request


def sdk_build(client: DefaultAlipayClient, at: real_datetime.datetime, execute: str, request, *args) -> str:
    with mock.patch.object(client_module, "datetime", frozen_datetime(at)):
        return getattr(client, execute)(request, *args)


def query(url: str) -> Tuple[str, Dict[str, str]]:
    """``(scheme://host/path, params)`` of a URL; duplicate keys would be a bug, so they fail."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    params = dict(pairs)
    assert len(params) == len(pairs), f"duplicate keys in {url[:80]}"
    return f"{parts.scheme}://{parts.netloc}{parts.path}", params


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
