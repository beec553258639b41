"""Hostile inputs for every entry point: long and pathological values of every field, each sized to
fill its entry point's body limit, and the raw bodies a parser could choke on.

One catalogue, two users: tests/functional/test_hostile_inputs.py proves each is refused (400 or
``fail``) within a CPU budget, and bench/run.py prints the worst parse cost found per entry point
beside a normal request's. Everything here is built from the real signing code (``local.alipay``),
so a field that only a verified notify reaches (``total_amount``) is signed and does reach it.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from local import alipay, events
from shared import api
from shared.alipay import notify, sync_return
from shared.domain import validation

PAY_LIMIT = api.MAX_JSON_BODY
FORM_LIMIT = notify.MAX_BODY_BYTES  # the notify body and the return's query string
# add_order and refund are invoked directly (no API Gateway): Lambda accepts events up to 6 MB;
# a quarter of a megabyte per field already shows whether anything walks a field before bounding it.
DIRECT_LIMIT = 256 * 1024
JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}

# name -> text of about n characters. Each one defeats some kind of parser: backtracking amount
# patterns (digits, a point, an exponent, then one bad character), per-character Unicode walks
# (combining marks, Han), and percent-decoding (lone and broken escapes).
PATTERNS: Dict[str, Callable[[int], str]] = {
    "digits then a letter": lambda n: "1" * max(n - 1, 0) + "x",
    "digits, point, digits then a letter": lambda n: "1." + "1" * max(n - 3, 0) + "x",
    "exponent digits then a letter": lambda n: "1e" + "1" * max(n - 3, 0) + "x",
    "spaces then a letter": lambda n: " " * max(n - 1, 0) + "x",
    "a valid amount padded with zeros": lambda n: "1." + "0" * max(n - 2, 0),
    "letters": lambda n: "a" * n,
    "Han characters": lambda n: "支" * n,
    "combining marks": lambda n: "\u0301" * n,
    "decomposed letters": lambda n: "e\u0301" * (n // 2),
    "percent signs": lambda n: "%" * n,
    "broken escapes": lambda n: "%E4%B8" * (n // 6),
}

# JSON number literals (not strings) for pay's body: #2, a number Decimal cannot hold is a 400.
NUMBER_LITERALS: Dict[str, Callable[[int], str]] = {
    "exponent beyond Decimal": lambda n: "1e9999999999999999999",
    "negative exponent beyond Decimal": lambda n: "1e-9999999999999999999",
    "long integer": lambda n: "9" * n,
    "long fraction": lambda n: "1." + "1" * max(n - 2, 0),
    "long exponent": lambda n: "1e" + "9" * max(n - 2, 0),
}


@dataclass(frozen=True)
class Case:
    """One hostile request: ``entry`` (pay, add_order, refund, pay_notify, pay_return) gets ``event``;
    the answer must be a refusal, naming ``field`` where the entry point answers in words."""

    entry: str
    name: str
    event: Any
    field: Optional[str]
    size: int


def fill(build: Callable[[int], bytes], limit: int) -> Tuple[int, bytes]:
    """The largest ``n`` whose ``build(n)`` fits in ``limit`` bytes, and that body (binary search)."""
    low, high = 0, limit
    while low < high:
        mid = (low + high + 1) // 2
        if len(build(mid)) <= limit:
            low = mid
        else:
            high = mid - 1
    return low, build(low)


# --- pay: a public JSON body ---------------------------------------------------------------------

PAY_GOOD = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01", "body": "商品描述"}
PAY_FIELDS = ("productId", "userId", "orderName", "body", "total_amount", "channel")


def pay_event(body: bytes, headers: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    return events.http_event("POST", "/pay", body, {**JSON, **(headers or {})})


def _pay_with(field: str, value: Any) -> bytes:
    return json.dumps({**PAY_GOOD, field: value}, ensure_ascii=False).encode("utf-8")


def _pay_with_literal(field: str, literal: str) -> bytes:
    marker = "\x00literal\x00"
    return _pay_with(field, marker).replace(json.dumps(marker).encode(), literal.encode())


def pay_cases() -> Iterator[Case]:
    for field in PAY_FIELDS:
        for name, pattern in PATTERNS.items():
            size, body = fill(lambda n: _pay_with(field, pattern(n)), PAY_LIMIT)
            if field == "total_amount" and name == "a valid amount padded with zeros":
                continue  # a valid amount under any sane bound is a later case: the padded one is 16 KB
            yield Case("pay", f"{field}: {name}", pay_event(body), field, size)
        for name, literal in NUMBER_LITERALS.items():
            size, body = fill(lambda n: _pay_with_literal(field, literal(n)), PAY_LIMIT)
            yield Case("pay", f"{field}: number, {name}", pay_event(body), field, size)
    size, body = fill(lambda n: _pay_with("total_amount", PATTERNS["a valid amount padded with zeros"](n)), PAY_LIMIT)
    yield Case("pay", "total_amount: a valid amount padded with zeros", pay_event(body), "total_amount", size)
    good = json.dumps(PAY_GOOD, ensure_ascii=False).encode()
    yield Case("pay", "Idempotency-Key: 10 KB", pay_event(good, {"idempotency-key": "k" * 10_240}), "Idempotency-Key", 10_240)
    nested = b'{"a":' * 4000 + b"1" + b"}" * 4000
    yield Case("pay", "raw body: deep nesting", pay_event(nested), None, len(nested))
    numbers = b"[" + b",".join([b"1e9999999999999999999"] * 700) + b"]"
    yield Case("pay", "raw body: many huge numbers", pay_event(numbers), None, len(numbers))
    over = b'{"body": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    yield Case("pay", "raw body: 10 MB (API Gateway's limit)", pay_event(over), None, len(over))


# --- add_order and refund: direct invocations ----------------------------------------------------

ADD_ORDER_GOOD = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "totalAmount": 19801, "body": "商品描述"}
ADD_ORDER_FIELDS = ("productId", "userId", "orderName", "body", "totalAmount", "orderNum")
REFUND_GOOD = {"outTradeNo": "ORDER_1", "outRequestNo": "R1", "refundAmount": 100, "refundReason": "退货"}
REFUND_FIELDS = ("outTradeNo", "outRequestNo", "refundAmount", "refundReason")
# What Lambda's runtime makes of numbers a JSON event can carry (json.loads: floats, big ints).
DIRECT_NUMBERS: Dict[str, Any] = {"infinity": float("inf"), "NaN": float("nan"), "1e400 digits": 10 ** 400,
                                  "float": 1.5}


def direct_cases() -> Iterator[Case]:
    for entry, good, fields in (("add_order", ADD_ORDER_GOOD, ADD_ORDER_FIELDS), ("refund", REFUND_GOOD, REFUND_FIELDS)):
        for field in fields:
            for name, pattern in PATTERNS.items():
                value = pattern(DIRECT_LIMIT)
                yield Case(entry, f"{field}: {name}", {**good, field: value}, field, len(value))
            for name, number in DIRECT_NUMBERS.items():
                if field in ("totalAmount", "refundAmount") or name != "float":
                    yield Case(entry, f"{field}: number, {name}", {**good, field: number}, field, 0)


# --- pay_notify and pay_return: forms Alipay signs ----------------------------------------------

NOTIFY_FIELDS = ("total_amount", "out_trade_no", "trade_no", "trade_status", "app_id", "seller_id",
                 "notify_id", "gmt_payment", "charset", "sign_type", "sign")
UNSIGNED = ("charset", "sign_type", "sign")  # set after signing: the signer itself reads them


def notify_event(body: bytes) -> Dict[str, Any]:
    return events.http_event("POST", "/pay/notify", body, FORM)


def return_event(query: bytes) -> Dict[str, Any]:
    return events.http_event("GET", "/pay/return", query=query.decode("ascii"))


def _signed_form(app_id: str, private_key, field: str, value: str) -> bytes:
    params = alipay.notify_params(app_id=app_id, out_trade_no="ORDER_1", total_amount="198.01")
    if field not in UNSIGNED:
        params[field] = value
    signed = alipay.sign_notify(params, private_key)
    if field in UNSIGNED:
        signed[field] = value
    return alipay.form_body(signed, "utf-8")


RAW_FORMS: Dict[str, Callable[[int], bytes]] = {
    "percent signs": lambda n: b"%" * n,
    "ampersands": lambda n: b"&" * n,
    "equals signs": lambda n: b"=" * n,
    "lone escapes in a value": lambda n: b"a=" + b"%2" * ((n - 2) // 2),
    "escaped keys": lambda n: b"&".join([b"%61%62=1"] * (n // 9)),
    "invalid UTF-8": lambda n: b"a=" + b"%FF" * ((n - 2) // 3),
    "many fields": lambda n: b"&".join(b"k%d=1" % i for i in range(n // 8)),
    "one long key": lambda n: b"k" * (n - 2) + b"=1",
}


def form_cases(app_id: str, private_key) -> Iterator[Case]:
    for entry, make_event in (("pay_notify", notify_event), ("pay_return", return_event)):
        for field in NOTIFY_FIELDS:
            for name, pattern in PATTERNS.items():
                # The signature is over the values, so the body is sized once from the unsigned part.
                size, body = _fill_signed(app_id, private_key, field, pattern)
                yield Case(entry, f"{field}: {name}", make_event(body), field, size)
        for name, raw in RAW_FORMS.items():
            size, body = fill(raw, FORM_LIMIT)
            yield Case(entry, f"raw form: {name}", make_event(body), None, size)
    over = b"a=" + b"x" * (10 * 1024 * 1024)
    yield Case("pay_notify", "raw form: 10 MB (API Gateway's limit)", notify_event(over), None, len(over))
    over = b"a=" + b"x" * (FORM_LIMIT + 1)
    yield Case("pay_return", "raw form: over the limit", return_event(over), None, len(over))


def _fill_signed(app_id: str, private_key, field: str, pattern: Callable[[int], str]) -> Tuple[int, bytes]:
    base = len(_signed_form(app_id, private_key, field, ""))
    encoded = lambda n: len(alipay.form_body({"k": pattern(n)}, "utf-8")) - 2  # noqa: E731
    size, _ = fill(lambda n: b"x" * (base + encoded(n)), FORM_LIMIT - 64)  # 64: the signature's escapes vary
    return size, _signed_form(app_id, private_key, field, pattern(size))


def all_cases(app_id: str, alipay_private_key) -> List[Case]:
    return [*pay_cases(), *direct_cases(), *form_cases(app_id, alipay_private_key)]


# --- the parse step of each entry point, for the bench ------------------------------------------

def parsers(app_id: str, alipay_public_key) -> Dict[str, Callable[[Any], Any]]:
    """What each entry point does with its input before any storage: the parse cost of a request."""
    def pay(event):
        payload = api.json_body(event)
        return validation.pay_request(payload), validation.pay_channel(payload)

    return {
        "pay": pay,
        "add_order": validation.add_order_request,
        "refund": validation.refund_request,
        "pay_notify": lambda event: notify.verify_notify(
            api.raw_body(event, notify.MAX_BODY_BYTES), public_key=alipay_public_key, app_id=app_id),
        "pay_return": lambda event: sync_return.verify_return(
            api.raw_query(event, notify.MAX_BODY_BYTES), public_key=alipay_public_key, app_id=app_id),
    }


REFUSALS = (validation.RequestRefused, notify.NotifyRejected)


def normal_events(app_id: str, alipay_private_key) -> Dict[str, Any]:
    """One ordinary, valid request per entry point."""
    form = alipay.form_body(alipay.sign_notify(
        alipay.notify_params(app_id=app_id, out_trade_no="ORDER_1", total_amount="198.01"), alipay_private_key), "utf-8")
    return {
        "pay": pay_event(json.dumps(PAY_GOOD, ensure_ascii=False).encode()),
        "add_order": dict(ADD_ORDER_GOOD),
        "refund": dict(REFUND_GOOD),
        "pay_notify": notify_event(form),
        "pay_return": return_event(form),
    }


def cpu_seconds(call: Callable[[], Any], repeats: int = 3) -> float:
    """The least CPU time of ``repeats`` calls: what the input costs, without the machine's noise."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        try:
            call()
        except REFUSALS:
            pass
        best = min(best, time.process_time() - start)
    return best
