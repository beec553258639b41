"""page pay and precreate on the local stack, over real HTTP: the browser's redirect through the
emulated cashier (the buyer presses pay) back to /pay/return, and a scanned QR code, each ending in a paid order."""
from __future__ import annotations

import json
import re
from html import unescape

from tests.e2e.conftest import http, wait_until
from tests.e2e.test_local_stack import PURCHASE, acknowledged, order
from tests.unit.test_sandbox_channels import cashier_choice


def pay_on(stack, channel: str) -> dict:
    status, reply = http("POST", f"{stack.url}/pay", json.dumps({**PURCHASE, "channel": channel}).encode(), "application/json")
    assert status == 200, reply
    return reply["data"]


def test_page_pay_redirects_back_to_the_return_page_which_shows_the_order_paid(stack):
    data = pay_on(stack, "page")
    assert data["payUrl"].startswith(f"{stack.url}/sandbox/gateway.do?")
    status, cashier = http("GET", data["payUrl"], parse=False)  # the browser follows payUrl
    assert status == 200 and "收银台" in cashier and data["outTradeNo"] in cashier, cashier[:300]
    assert order(stack, data["outTradeNo"])[1]["data"]["status"] == 0  # nothing paid until the buyer says so
    status, paid = http("POST", f"{stack.url}/sandbox/cashier", cashier_choice(cashier.encode(), "pay"),
                        "application/x-www-form-urlencoded", parse=False)
    assert status == 200 and "已支付" in paid, paid[:300]
    back = unescape(re.search(r'content="0;url=([^"]+)"', paid).group(1))
    assert back.startswith(f"{stack.url}/pay/return?")

    acknowledged(stack, data["outTradeNo"])  # the notify, not the return, made it paid
    status, page = http("GET", back, parse=False)
    assert status == 200 and "支付成功" in page and data["outTradeNo"] in page
    assert order(stack, data["outTradeNo"])[1]["data"]["status"] == 1

    forged = back.replace("total_amount=198.01", "total_amount=0.01")
    assert forged != back and http("GET", forged, parse=False)[0] == 400


def test_precreate_then_the_buyer_scans_and_the_order_is_paid(stack):
    data = pay_on(stack, "precreate")
    assert data["qrCode"] and order(stack, data["outTradeNo"])[1]["data"]["status"] == 0
    status, trade = http("POST", f"{stack.url}/sandbox/scan?out_trade_no={data['outTradeNo']}")
    assert status == 200 and trade["status"] == "TRADE_SUCCESS"
    acknowledged(stack, data["outTradeNo"])
    paid = wait_until(lambda: order(stack, data["outTradeNo"])[1], lambda body: body["data"]["status"] == 1)
    assert paid["data"]["status"] == 1
