"""The official alipay-sdk-python, driven as our reference (dev dependency only).

Its ``DefaultAlipayClient`` stamps requests with ``datetime.datetime.now()`` in the process's own
zone; ``frozen_sdk_clock`` pins that to the Shanghai wall-clock time we sign with, so the two
outputs can be compared for the same inputs and timestamp.
"""
from __future__ import annotations

import contextlib
import datetime as real_datetime
import types
from typing import Dict, Iterator, Optional
from urllib.parse import parse_qsl

import alipay.aop.api.DefaultAlipayClient as sdk_client_module
from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.domain.AlipayTradeAppPayModel import AlipayTradeAppPayModel
from alipay.aop.api.request.AlipayTradeAppPayRequest import AlipayTradeAppPayRequest

from shared import clock


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
