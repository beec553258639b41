"""`make demo`: the walk-through against a running local stack, each step printed.

pay -> the emulated Alipay SDK pays -> Alipay's notify reaches /pay/notify -> the order is paid.
Then a jsapi payment (alipay.trade.create; the buyer pays inside Alipay's app) and a barcode
payment at a till (alipay.trade.pay with a code whose buyer confirms on the phone: pay polls).
Over real HTTP (urllib), exactly as an app and Alipay would call the stack.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Optional, Tuple

from local.run import DEFAULT_PORT, HOST

WAIT_SECONDS = 15.0


def call(method: str, url: str, body: Optional[bytes] = None, content_type: Optional[str] = None, parse: bool = True,
         timeout: float = 10, headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any]:
    """One HTTP call; the JSON reply decoded (or the text when it is not JSON, or ``parse`` is off)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            status, raw = reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    text = raw.decode("utf-8")
    if not parse:
        return status, text
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def step(title: str, detail: Any) -> None:
    text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False, indent=2)
    print(f"\n== {title}\n{text}", flush=True)


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], seconds: float = WAIT_SECONDS) -> Any:
    """Call ``fetch`` until ``done(value)`` or time runs out; the last value either way (the
    caller judges it)."""
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def walk_through(base: str, outcome: str = "success", total_amount: str = "0.01", quiet: bool = False) -> Dict[str, Any]:
    """Run the flow once; returns the final order status reply. Raises SystemExit on a failed step."""
    show = (lambda *_: None) if quiet else step
    request = {"productId": "PROD_DEMO", "userId": "USER_DEMO", "orderName": "数据恢复产品 A", "total_amount": total_amount}
    show("1. app -> POST /pay", request)
    status, reply = call("POST", f"{base}/pay", json.dumps(request).encode(), "application/json")
    show(f"   <- HTTP {status}", reply)
    if status != 200:
        raise SystemExit(f"pay failed: HTTP {status}")
    order_str, out_trade_no = reply["data"]["orderStr"], reply["data"]["outTradeNo"]

    show(f"2. app -> Alipay SDK (emulated): POST /sandbox/app-pay?outcome={outcome}", order_str[:120] + "...")
    status, result = call("POST", f"{base}/sandbox/app-pay?outcome={outcome}", order_str.encode(), "text/plain")
    show(f"   <- HTTP {status}", result)
    if status != 200 or result.get("resultStatus") not in ("9000", "6001"):
        raise SystemExit(f"app-pay failed: {result}")

    show("3. Alipay -> POST /pay/notify (signed trade_status_sync), as the emulator logged it", "waiting...")
    _, trade = poll(lambda: call("GET", f"{base}/sandbox/trades/{out_trade_no}"),
                    lambda reply: reply[0] == 200 and any(d["acknowledged"] for d in reply[1]["deliveries"]))
    show("   deliveries", trade.get("deliveries"))

    expected = 1 if outcome == "success" else 2
    _, order = poll(lambda: call("GET", f"{base}/orders/{out_trade_no}"),
                    lambda reply: reply[0] == 200 and reply[1]["data"]["status"] == expected)
    show(f"4. app -> GET /orders/{out_trade_no}  (status 1 = paid, 2 = closed)", order)
    if order.get("data", {}).get("status") != expected:
        raise SystemExit(f"order did not reach status {expected}")
    return order


PURCHASE = {"productId": "PROD_DEMO", "userId": "USER_DEMO", "orderName": "数据恢复产品 A", "total_amount": "0.01"}
DEMO_BUYER_ID = "2088102177846880"
DEMO_AUTH_CODE = "28763443825660001"  # the emulator: ends 0001, the buyer confirms on the phone


def jsapi_walk_through(base: str, quiet: bool = False) -> Dict[str, Any]:
    """jsapi: pay creates the trade (its tradeNo for ``my.tradePay``), the buyer pays in Alipay's
    app (emulated: /sandbox/scan), the notify marks the order paid."""
    show = (lambda *_: None) if quiet else step
    request = {**PURCHASE, "channel": "jsapi", "buyerId": DEMO_BUYER_ID}
    show("5. mini program -> POST /pay (channel jsapi: alipay.trade.create)", request)
    status, reply = call("POST", f"{base}/pay", json.dumps(request).encode(), "application/json")
    show(f"   <- HTTP {status}", reply)
    if status != 200:
        raise SystemExit(f"jsapi pay failed: HTTP {status}")
    out_trade_no = reply["data"]["outTradeNo"]
    show(f"6. my.tradePay({{tradeNO: {reply['data']['tradeNo']}}}): the buyer pays in Alipay's app (emulated)",
         f"POST /sandbox/scan?out_trade_no={out_trade_no}")
    status, _ = call("POST", f"{base}/sandbox/scan?out_trade_no={out_trade_no}")
    if status != 200:
        raise SystemExit(f"the emulated buyer could not pay: HTTP {status}")
    _, order = poll(lambda: call("GET", f"{base}/orders/{out_trade_no}"),
                    lambda reply: reply[0] == 200 and reply[1]["data"]["status"] == 1)
    show(f"   app -> GET /orders/{out_trade_no}", order)
    if order.get("data", {}).get("status") != 1:
        raise SystemExit("the jsapi order was not paid")
    return order


def barcode_walk_through(base: str, quiet: bool = False) -> Dict[str, Any]:
    """barcode: the till posts the scanned code; pay answers once the order is settled."""
    show = (lambda *_: None) if quiet else step
    request = {**PURCHASE, "channel": "barcode", "authCode": DEMO_AUTH_CODE, "storeId": "DEMO_STORE"}
    show("7. till -> POST /pay (channel barcode: alipay.trade.pay; the buyer confirms on the phone, pay polls)", request)
    status, reply = call("POST", f"{base}/pay", json.dumps(request).encode(), "application/json", timeout=35)
    show(f"   <- HTTP {status}  (status 1 = paid, 2 = closed: final)", reply)
    if status != 200 or reply["data"]["status"] != 1:
        raise SystemExit(f"barcode pay did not end paid: HTTP {status}")
    return reply


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=f"http://{HOST}:{os.environ.get('PORT') or DEFAULT_PORT}")
    parser.add_argument("--outcome", default="success", choices=("success", "closed"))
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    try:
        call("GET", f"{base}/health")  # is anyone there, before step 1 is printed
        walk_through(base, args.outcome)
        jsapi_walk_through(base)
        barcode_walk_through(base)
    except (urllib.error.URLError, OSError) as exc:  # HTTPError is answered inside call()
        raise SystemExit(
            f"no local stack at {base} ({getattr(exc, 'reason', exc)}); start it with `make run` "
            "(same PORT) in another terminal, then `make demo` again"
        ) from None
    print("\nDone: each order's status came from Alipay (its notify, or its answer to the till), not from the app.")


if __name__ == "__main__":
    main()
