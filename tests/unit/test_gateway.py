"""The gateway client against answers signed in fixtures (no network: a recording transport)."""
import json
from datetime import datetime
from urllib.parse import parse_qsl

import pytest

from local import alipay
from shared.domain import clock
from shared.alipay import signing
from shared.alipay.gateway import (
    AlipayError, AlipayGateway, GatewayError, TRADE_NOT_EXIST, build_request, check_url, parse_response,
)

APP_ID = "2021000000000001"
AT = datetime(2026, 11, 26, 18, 30, 5, tzinfo=clock.SHANGHAI)
QUERY = "alipay.trade.query"


class Recorder:
    """A transport that records the request and answers with prepared bytes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.calls = []

    def __call__(self, url, query, body, timeout):
        self.calls.append((url, query, body, timeout))
        return self.answer


def gateway(app_keys, alipay_keys, transport):
    return AlipayGateway(
        app_id=APP_ID, private_key=app_keys.private_key, alipay_public_key=alipay_keys.public_key, transport=transport
    )


def paid(out_trade_no="ORDER_1", amount="198.01", **extra):
    return {"code": "10000", "msg": "Success", "out_trade_no": out_trade_no, "trade_no": "2026112622001400000000000001",
            "trade_status": "TRADE_SUCCESS", "total_amount": amount, "send_pay_date": "2026-11-26 18:01:02", **extra}


def test_request_is_signed_over_common_params_and_biz_content(app_keys):
    query, body = build_request(QUERY, {"out_trade_no": "ORDER_1"}, app_id=APP_ID, private_key=app_keys.private_key,
                                timestamp="2026-11-26 18:30:05")
    url_params = dict(parse_qsl(query))
    form = dict(parse_qsl(body.decode()))
    assert set(url_params) == {"app_id", "method", "format", "charset", "sign_type", "timestamp", "version", "sign"}
    assert form == {"biz_content": '{"out_trade_no":"ORDER_1"}'}
    assert url_params["timestamp"] == "2026-11-26 18:30:05" and url_params["method"] == QUERY
    signed = {**{k: v for k, v in url_params.items() if k != "sign"}, **form}
    assert signing.rsa2_verify(app_keys.public_key, signing.sign_content(signed), url_params["sign"])


def test_trade_query_returns_the_verified_trade(app_keys, alipay_keys):
    transport = Recorder(alipay.response_body(QUERY, paid(), alipay_keys.private_key))
    trade = gateway(app_keys, alipay_keys, transport).trade_query("ORDER_1", at=AT)
    assert (trade.trade_status, trade.total_cents, trade.trade_no) == ("TRADE_SUCCESS", 19801, "2026112622001400000000000001")
    url, query, body, timeout = transport.calls[0]
    assert url == "https://openapi.alipay.com/gateway.do" and 0 < timeout <= 10
    assert dict(parse_qsl(query))["timestamp"] == "2026-11-26 18:30:05"


@pytest.mark.parametrize("raw", [
    # spacing, key order and escapes a re-serialisation would not reproduce
    '{ "code" : "10000", "msg":"Success","out_trade_no":"ORDER_1","trade_status":"TRADE_SUCCESS",'
    '"trade_no":"1","total_amount":"198.01","buyer_logon_id":"159****5620","subject":"\\u6570\\u636e \\/ x"}',
    '{"total_amount":"198.01","trade_status":"TRADE_SUCCESS","trade_no":"1","out_trade_no":"ORDER_1",'
    '"code":"10000","msg":"Success","note":"a } and a \\" inside, \\/ escaped","nested":{"a":[1,{"b":"}"}]}}',
])
def test_signature_is_checked_over_the_raw_text_not_a_re_dump(app_keys, alipay_keys, raw):
    body = alipay.response_body(QUERY, {}, alipay_keys.private_key, raw=raw)
    assert all(raw != json.dumps(json.loads(raw), ensure_ascii=ascii, separators=sep, sort_keys=order)
               for ascii in (True, False) for sep in ((",", ":"), (", ", ": ")) for order in (True, False))
    assert parse_response(body, QUERY, alipay_keys.public_key)["trade_status"] == "TRADE_SUCCESS"


def test_signed_business_error_raises_alipay_error(app_keys, alipay_keys):
    error = {"code": "40004", "msg": "Business Failed", "sub_code": TRADE_NOT_EXIST, "sub_msg": "交易不存在"}
    transport = Recorder(alipay.response_body(QUERY, error, alipay_keys.private_key))
    with pytest.raises(AlipayError) as caught:
        gateway(app_keys, alipay_keys, transport).trade_query("ORDER_1")
    assert (caught.value.code, caught.value.sub_code, caught.value.sub_msg) == ("40004", TRADE_NOT_EXIST, "交易不存在")


def test_error_response_key_is_understood(alipay_keys):
    error = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature", "sub_msg": "验签出错"}
    body = alipay.response_body("error", error, alipay_keys.private_key)
    with pytest.raises(AlipayError) as caught:
        parse_response(body, QUERY, alipay_keys.public_key)
    assert caught.value.sub_code == "isv.invalid-signature"


def tampered(body: bytes) -> bytes:
    return body.replace(b"198.01", b"198.02")


@pytest.mark.parametrize("make", [
    lambda keys, other: tampered(alipay.response_body(QUERY, paid(), keys.private_key)),
    lambda keys, other: alipay.response_body(QUERY, paid(), other.private_key),  # someone else's key
    lambda keys, other: json.dumps({"alipay_trade_query_response": paid()}).encode(),  # unsigned
    lambda keys, other: json.dumps({"alipay_trade_query_response": {"code": "40004", "sub_code": TRADE_NOT_EXIST}}).encode(),
    lambda keys, other: alipay.response_body("alipay.trade.close", paid(), keys.private_key),  # another method's answer
    lambda keys, other: b"<html>502 Bad Gateway</html>",
    lambda keys, other: b'{"alipay_trade_query_response":{"code":"10000"},"sign":"x","sign":"y"}',
    lambda keys, other: alipay.response_body(QUERY, paid(), keys.private_key) + b" trailing",
    lambda keys, other: alipay.response_body(QUERY, paid(out_trade_no="ORDER_2"), keys.private_key),
    lambda keys, other: alipay.response_body(QUERY, paid(amount="1.001"), keys.private_key),
    lambda keys, other: alipay.response_body(QUERY, {"code": "10000", "out_trade_no": "ORDER_1"}, keys.private_key),
])
def test_untrustworthy_answers_are_gateway_errors_never_results(app_keys, alipay_keys, make):
    other = alipay.KeyPair(app_keys.private_key)
    transport = Recorder(make(alipay_keys, other))
    with pytest.raises(GatewayError) as caught:
        gateway(app_keys, alipay_keys, transport).trade_query("ORDER_1")
    assert not isinstance(caught.value, AlipayError)


def test_unsigned_error_is_not_taken_as_trade_not_exist(app_keys, alipay_keys):
    """An unsigned 'trade does not exist' must never let reconcile close an order."""
    body = json.dumps({"alipay_trade_query_response": {"code": "40004", "sub_code": TRADE_NOT_EXIST}}).encode()
    with pytest.raises(GatewayError) as caught:
        gateway(app_keys, alipay_keys, Recorder(body)).trade_query("ORDER_1")
    assert getattr(caught.value, "sub_code", None) is None


def test_trade_refund_sends_yuan_and_reads_the_cumulative_refund(app_keys, alipay_keys):
    answer = {"code": "10000", "msg": "Success", "out_trade_no": "ORDER_1", "trade_no": "1", "fund_change": "Y",
              "refund_fee": "50.10", "gmt_refund_pay": "2026-11-26 19:00:00"}
    transport = Recorder(alipay.response_body("alipay.trade.refund", answer, alipay_keys.private_key))
    refund = gateway(app_keys, alipay_keys, transport).trade_refund("ORDER_1", 5010, "R1", reason="缺货")
    assert (refund.fund_change, refund.refund_fee_cents) == (True, 5010)
    biz = json.loads(dict(parse_qsl(transport.calls[0][2].decode()))["biz_content"])
    assert biz == {"out_trade_no": "ORDER_1", "refund_amount": "50.10", "out_request_no": "R1", "refund_reason": "缺货"}


def test_trade_close(app_keys, alipay_keys):
    answer = {"code": "10000", "msg": "Success", "out_trade_no": "ORDER_1", "trade_no": "1"}
    transport = Recorder(alipay.response_body("alipay.trade.close", answer, alipay_keys.private_key))
    assert gateway(app_keys, alipay_keys, transport).trade_close("ORDER_1").trade_no == "1"
    assert dict(parse_qsl(transport.calls[0][1]))["method"] == "alipay.trade.close"


@pytest.mark.parametrize("url,ok", [
    ("https://openapi.alipay.com/gateway.do", True),
    ("http://127.0.0.1:8765/sandbox/gateway.do", True),
    ("http://openapi.alipay.com/gateway.do", False),
    ("ftp://x/gateway.do", False),
    ("https:///gateway.do", False),
])
def test_gateway_url_is_https_or_loopback(url, ok):
    if ok:
        assert check_url(url) == url
    else:
        with pytest.raises(ValueError):
            check_url(url)
