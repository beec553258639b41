"""Our orderStr equals the official alipay-sdk-python's ``sdk_execute`` output, parameter for
parameter and signature for signature (RSA PKCS#1 v1.5 is deterministic)."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from shared.alipay import orderstr, signing
from shared.alipay.orderstr import AppPayOrder

from tests.conftest import APP_ID, NOTIFY_URL
from tests.sdk_oracle import query_params, sdk_app_pay, sdk_client

pytestmark = pytest.mark.oracle
AT = datetime(2026, 11, 26, 15, 50, 34, tzinfo=timezone(timedelta(hours=8)))


def ours(app_keys, order: AppPayOrder, at=AT) -> str:
    return orderstr.app_pay(app_id=APP_ID, private_key=app_keys.private_key, notify_url=NOTIFY_URL, order=order, at=at)


def theirs(app_keys, order: AppPayOrder, at=AT) -> str:
    client = sdk_client(APP_ID, app_keys.private_base64(pkcs8=False))
    return sdk_app_pay(
        client, at, notify_url=NOTIFY_URL, out_trade_no=order.out_trade_no,
        total_amount=orderstr.money.cents_to_yuan(order.total_cents), subject=order.subject,
        body=order.body, timeout_express=order.timeout_express,
    )


@pytest.mark.parametrize(
    "order",
    [
        AppPayOrder("ORDER_1757663434644_cs6xps9jy", 19801, "数据恢复产品 A", "订单ORDER_1757663434644_cs6xps9jy"),
        AppPayOrder("ORDER_1757663434644_x", 1, "a & b = c + d/e?f#g%h"),
        AppPayOrder("20150320010101001", 100_000_000_00, "Iphone6 16G", timeout_express="90m"),
        AppPayOrder("ORDER_1_emoji", 1230, "café ☕ \"quoted\" 😀", "line\\back"),
    ],
    ids=["seed-004", "reserved-chars", "max-amount", "unicode"],
)
def test_order_str_equals_official_sdk(app_keys, order):
    mine, reference = query_params(ours(app_keys, order)), query_params(theirs(app_keys, order))
    assert mine == reference
    assert mine["timestamp"] == "2026-11-26 15:50:34"
    assert mine["sign"]  # and the signature, inside the dict, is byte-equal


def test_timestamp_is_shanghai_time_whatever_the_given_zone(app_keys):
    order = AppPayOrder("ORDER_1_tz", 100, "tz")
    utc = AT.astimezone(timezone.utc)  # 07:50:34 UTC, the same instant
    assert query_params(ours(app_keys, order, utc)) == query_params(theirs(app_keys, order, AT))


def test_signature_verifies_with_the_app_public_key_over_the_sign_content(app_keys):
    params = query_params(ours(app_keys, AppPayOrder("ORDER_1_v", 990, "verify")))
    content = signing.sign_content(params)
    assert signing.rsa2_verify(app_keys.public_key, content, params["sign"])
    tampered = dict(params, biz_content=params["biz_content"].replace("9.90", "0.01"))
    assert not signing.rsa2_verify(app_keys.public_key, signing.sign_content(tampered), params["sign"])


subjects = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(lambda s: s.strip())


@settings(max_examples=25, deadline=None)
@given(cents=st.integers(1, 100_000_000_00), subject=subjects, body=st.none() | subjects)
def test_order_str_equals_official_sdk_for_any_amount_and_text(app_keys, cents, subject, body):
    order = AppPayOrder("ORDER_1795000000000_prop", cents, subject, body)
    assert query_params(ours(app_keys, order)) == query_params(theirs(app_keys, order))
