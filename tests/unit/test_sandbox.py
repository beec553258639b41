"""The Alipay emulator without a network: acceptance rules, signed answers, the gateway table."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import List, Tuple
from urllib.parse import parse_qsl

import pytest

from local import alipay
from local import sandbox as sandbox_module
from local.ledger import TRADE_CLOSED, TRADE_SUCCESS, Ledger
from local.notifier import Notifier
from local.sandbox import Sandbox, check_pay_biz, invalid
from shared.domain import clock
from shared.alipay import notify, orderstr, signing

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
NOTIFY_URL = "http://127.0.0.1:9/pay/notify"


class RecordingNotifier(Notifier):
    """Keeps what would be sent instead of POSTing it."""

    def __init__(self) -> None:
        super().__init__(Ledger())
        self.sent: List[Tuple[str, str, dict, int]] = []

    def send(self, out_trade_no, url, sign, lost_answers=0):
        self.sent.append((out_trade_no, url, sign(), lost_answers))


@pytest.fixture
def emulator(app_keys, alipay_keys) -> Sandbox:
    return Sandbox(
        app_id=APP_ID, seller_id=SELLER_ID, app_public_key=app_keys.public_key,
        alipay_private_key=alipay_keys.private_key, notifier=RecordingNotifier(),
    )


def order_str(app_keys, at=None, app_id=APP_ID, **biz) -> bytes:
    request = orderstr.AppPayOrder(
        biz.pop("out_trade_no", "ORDER_1795000000000_abc"), biz.pop("total_cents", 19801), biz.pop("subject", "数据恢复产品 A"),
        timeout_express=biz.pop("timeout_express", "30m"),
    )
    return orderstr.app_pay(app_id=app_id, private_key=app_keys.private_key, notify_url=NOTIFY_URL, order=request, at=at).encode()


def resign(app_keys, raw: bytes, **changes) -> bytes:
    """Change parameters of an orderStr and sign it again (what a buggy or hostile app sends)."""
    params = {k: v for k, v in parse_qsl(raw.decode()) if k != "sign"}
    biz = json.loads(params["biz_content"])
    biz.update(changes)
    params["biz_content"] = orderstr.biz_content_json({k: v for k, v in biz.items() if v is not None})
    return orderstr.encode(orderstr.signed_params(app_keys.private_key, params)).encode()


def response_of(text: str, key: str) -> Tuple[str, str]:
    """The raw JSON text of ``key``'s value and the sign, cut out as Alipay's SDKs cut them."""
    start = text.index(f'"{key}":') + len(f'"{key}":')
    end = text.rindex(',"sign":"')
    sign = re.search(r',"sign":"([^"]+)"', text[end:]).group(1)
    return text[start:end], sign


def test_paid_result_is_signed_over_the_exact_response_text(emulator, app_keys, alipay_keys):
    result = emulator.app_pay(order_str(app_keys))
    assert (result["resultStatus"], result["memo"]) == ("9000", "")
    content, sign = response_of(result["result"], "alipay_trade_app_pay_response")
    assert signing.rsa2_verify(alipay_keys.public_key, content, sign)
    response = json.loads(content)
    assert (response["code"], response["out_trade_no"], response["total_amount"]) == ("10000", "ORDER_1795000000000_abc", "198.01")
    assert re.fullmatch(r"\d{28}", response["trade_no"])
    assert emulator.ledger.find("ORDER_1795000000000_abc").status == TRADE_SUCCESS


def test_paid_trade_is_notified_with_a_notify_our_handler_verifies(emulator, app_keys, alipay_keys):
    emulator.app_pay(order_str(app_keys), lost_answers=2)
    [(out_trade_no, url, params, lost)] = emulator.notifier.sent
    assert (out_trade_no, url, lost) == ("ORDER_1795000000000_abc", NOTIFY_URL, 2)
    verified = notify.verify_notify(alipay.form_body(params), public_key=alipay_keys.public_key, app_id=APP_ID, seller_id=SELLER_ID)
    assert (verified.trade_status, verified.total_cents, verified.params["subject"]) == ("TRADE_SUCCESS", 19801, "数据恢复产品 A")
    assert verified.trade_no == emulator.ledger.find(out_trade_no).trade_no and verified.gmt_payment


def test_cancelled_closes_the_trade_and_notifies_trade_closed(emulator, app_keys):
    result = emulator.app_pay(order_str(app_keys), outcome="closed")
    assert (result["resultStatus"], result["result"]) == ("6001", "")
    [(_, _, params, _)] = emulator.notifier.sent
    assert params["trade_status"] == TRADE_CLOSED and "gmt_payment" not in params and "receipt_amount" not in params


def test_drop_pays_but_never_notifies(emulator, app_keys):
    assert emulator.app_pay(order_str(app_keys), outcome="drop")["resultStatus"] == "9000"
    assert emulator.notifier.sent == []


def test_a_wrong_app_key_is_refused(emulator, alipay_keys):
    result = emulator.app_pay(order_str(alipay_keys))  # signed with a key that is not the app's
    assert result["resultStatus"] == "4000" and "isv.invalid-signature" in result["memo"]
    assert emulator.ledger.find("ORDER_1795000000000_abc") is None and emulator.notifier.sent == []


def test_a_tampered_amount_breaks_the_signature(emulator, app_keys):
    raw = order_str(app_keys).decode().replace("198.01", "0.01")
    assert "isv.invalid-signature" in emulator.app_pay(raw.encode())["memo"]


@pytest.mark.parametrize(
    "change, sub_code",
    [
        ({"total_amount": "0.00"}, "isv.invalid-total-amount"),
        ({"total_amount": "100000000.01"}, "isv.invalid-total-amount"),
        ({"total_amount": "1.001"}, "isv.invalid-total-amount"),
        ({"total_amount": 1}, "isv.invalid-total-amount"),
        ({"out_trade_no": "ORDER-1"}, "isv.invalid-out-trade-no"),
        ({"out_trade_no": "A" * 65}, "isv.invalid-out-trade-no"),
        ({"product_code": "FAST_INSTANT_TRADE_PAY"}, "isv.invalid-product-code"),
        ({"product_code": None}, "isv.invalid-product-code"),
        ({"subject": None}, "isv.invalid-subject"),
        ({"timeout_express": "16d"}, "isv.invalid-timeout-express"),
        ({"timeout_express": "30s"}, "isv.invalid-timeout-express"),
        ({"time_expire": "tomorrow"}, "isv.invalid-time-expire"),
    ],
)
def test_biz_content_is_checked_like_alipay(emulator, app_keys, change, sub_code):
    result = emulator.app_pay(resign(app_keys, order_str(app_keys), **change))
    assert result["resultStatus"] == "4000" and result["memo"].startswith(sub_code)


def test_an_order_str_past_its_timeout_is_closed(emulator, app_keys):
    an_hour_ago = clock.now() - timedelta(hours=1)
    result = emulator.app_pay(order_str(app_keys, at=an_hour_ago, timeout_express="30m"))
    assert result["resultStatus"] == "4000" and "ACQ.TRADE_HAS_CLOSE" in result["memo"]
    assert emulator.app_pay(order_str(app_keys, at=an_hour_ago, timeout_express="2h"))["resultStatus"] == "9000"


def test_another_app_id_is_refused(emulator, app_keys):
    assert "isv.invalid-app-id" in emulator.app_pay(order_str(app_keys, app_id="2021000000000002"))["memo"]


def test_a_paid_out_trade_no_cannot_be_paid_again(emulator, app_keys):
    assert emulator.app_pay(order_str(app_keys))["resultStatus"] == "9000"
    again = emulator.app_pay(order_str(app_keys))
    assert again["resultStatus"] == "4000" and "ACQ.TRADE_HAS_SUCCESS" in again["memo"]
    assert len(emulator.notifier.sent) == 1


def test_unknown_outcome_is_refused(emulator, app_keys):
    assert emulator.app_pay(order_str(app_keys), outcome="maybe")["resultStatus"] == "4000"


def test_biz_rules_normalise_the_amount():
    biz = {"out_trade_no": "A_1", "total_amount": "1.1", "subject": "s", "product_code": "QUICK_MSECURITY_PAY"}
    assert check_pay_biz(biz, "QUICK_MSECURITY_PAY", clock.alipay_timestamp())["total_amount"] == "1.10"


# --- /sandbox/gateway.do --------------------------------------------------------------------------

def gateway_request(app_keys, method: str, biz: dict, app_id: str = APP_ID) -> bytes:
    params = orderstr.common_params(method, app_id, clock.alipay_timestamp())
    params["biz_content"] = orderstr.biz_content_json(biz)
    return orderstr.encode(orderstr.signed_params(app_keys.private_key, params)).encode()


def call(emulator, body: bytes, query: bytes = b""):
    status, content_type, raw = emulator.gateway(query, body)
    assert status == 200 and content_type.startswith("application/json")
    return raw.decode("utf-8")


def test_trade_query_answers_a_signed_response(emulator, app_keys, alipay_keys):
    emulator.app_pay(order_str(app_keys))
    text = call(emulator, gateway_request(app_keys, "alipay.trade.query", {"out_trade_no": "ORDER_1795000000000_abc"}))
    content, sign = response_of(text, "alipay_trade_query_response")
    assert signing.rsa2_verify(alipay_keys.public_key, content, sign)
    response = json.loads(content)
    assert (response["code"], response["trade_status"], response["total_amount"]) == ("10000", "TRADE_SUCCESS", "198.01")
    by_trade_no = call(emulator, gateway_request(app_keys, "alipay.trade.query", {"trade_no": response["trade_no"]}))
    assert json.loads(response_of(by_trade_no, "alipay_trade_query_response")[0])["out_trade_no"] == "ORDER_1795000000000_abc"


def test_common_parameters_may_travel_in_the_query_string(emulator, app_keys):
    """The official SDKs put the public parameters in the URL and biz_content in the body."""
    emulator.app_pay(order_str(app_keys))
    params = dict(parse_qsl(gateway_request(app_keys, "alipay.trade.query", {"out_trade_no": "ORDER_1795000000000_abc"}).decode()))
    body = orderstr.encode({"biz_content": params.pop("biz_content")}).encode()
    text = call(emulator, body, orderstr.encode(params).encode())
    assert json.loads(response_of(text, "alipay_trade_query_response")[0])["code"] == "10000"


def test_trade_query_of_an_unknown_trade_is_a_business_error(emulator, app_keys, alipay_keys):
    text = call(emulator, gateway_request(app_keys, "alipay.trade.query", {"out_trade_no": "NOPE"}))
    content, sign = response_of(text, "alipay_trade_query_response")
    assert signing.rsa2_verify(alipay_keys.public_key, content, sign)
    assert json.loads(content) == {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}


def test_a_bad_request_signature_is_refused(emulator, app_keys, alipay_keys):
    text = call(emulator, gateway_request(alipay_keys, "alipay.trade.query", {"out_trade_no": "X"}))
    assert json.loads(response_of(text, "alipay_trade_query_response")[0])["sub_code"] == "isv.invalid-signature"


def test_unknown_methods_get_an_error_response(emulator, app_keys):
    text = call(emulator, gateway_request(app_keys, "alipay.trade.nope", {}))
    assert json.loads(response_of(text, "error_response")[0])["sub_code"] == "isv.invalid-method"


def test_methods_are_added_by_registering_them(emulator, app_keys, monkeypatch):
    monkeypatch.setitem(sandbox_module.GATEWAY_METHODS, "alipay.trade.close", lambda sb, req: (_ for _ in ()).throw(
        invalid("isv.test", req.biz["out_trade_no"])))
    text = call(emulator, gateway_request(app_keys, "alipay.trade.close", {"out_trade_no": "X1"}))
    assert json.loads(response_of(text, "alipay_trade_close_response")[0])["sub_msg"] == "X1"


def test_the_same_order_str_paid_at_once_from_many_threads_pays_once(emulator, app_keys):
    from concurrent.futures import ThreadPoolExecutor

    raw = order_str(app_keys)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: emulator.app_pay(raw)["resultStatus"], range(8)))
    assert sorted(results) == ["4000"] * 7 + ["9000"]
    assert len(emulator.notifier.sent) == 1
