"""Issue 11 #1 and #2: no request costs more than milliseconds of CPU, whatever its content, and
every number Decimal cannot represent is a 400 naming its field.

Every field of pay, add_order, refund, pay_notify and pay_return gets long and pathological values
filling its entry point's body limit (tests/hostile.py): each is refused — 400 with a message that
names the field, or ``fail`` to Alipay — nothing is written, and the handler's CPU time stays under
a generous budget. (Before the fix a 16 KiB amount of digits and one letter cost about 20 s.)
"""
from __future__ import annotations

import json

import pytest

from functions.add_order.handler import handler as add_order
from functions.pay.handler import handler as pay
from functions.pay_notify.handler import handler as pay_notify
from functions.pay_return.handler import handler as pay_return
from functions.refund.handler import handler as refund
from tests import hostile
from tests.conftest import APP_ID, stored_items

# CPU seconds for one refused request, logging included. A normal pay takes well under a
# millisecond outside DynamoDB; this bound is 50 times that, so it only catches super-linear work.
BUDGET = 0.05

HANDLERS = {"pay": pay, "add_order": add_order, "refund": refund, "pay_notify": pay_notify, "pay_return": pay_return}


def _answer(entry, reply):
    """(refused?, message) of a handler's reply, whatever its shape."""
    if entry == "pay_notify":
        return reply["body"] == "fail", None
    if entry == "pay_return":
        return reply["statusCode"] == 400, None
    if entry == "pay":
        return reply["statusCode"] == 400, json.loads(reply["body"])["msg"]
    return reply["code"] == 400, reply["msg"]  # add_order, refund: the envelope itself


def _cases():
    from local.alipay import KeyPair  # noqa: PLC0415

    # Signed with a fixed key pair made here, so the ids are stable; the env fixture's Alipay key
    # is swapped for this one's public half in the test.
    keys = KeyPair.generate()
    return keys, hostile.all_cases(APP_ID, keys.private_key)


KEYS, CASES = _cases()


@pytest.fixture
def hostile_env(env, dynamodb, monkeypatch):
    monkeypatch.setenv("ALIPAY_PUBLIC_KEY", KEYS.public_base64())
    from shared import config  # noqa: PLC0415

    config.reset()
    yield dynamodb
    config.reset()


@pytest.mark.parametrize("entry", list(HANDLERS))
def test_every_hostile_input_is_refused_cheaply_and_writes_nothing(hostile_env, entry):
    """One test per entry point (a moto table per case would cost more than the cases)."""
    handler, problems, worst = HANDLERS[entry], [], (0.0, None)
    cases = [case for case in CASES if case.entry == entry]
    for case in cases:
        replies = []
        cpu = hostile.cpu_seconds(lambda: replies.append(handler(case.event, None)))
        worst = max(worst, (cpu, case.name), key=lambda pair: pair[0])
        refused, msg = _answer(entry, replies[-1])
        if not refused or "internal error" in (msg or ""):
            problems.append(f"{case.name}: not refused: {str(replies[-1])[:300]}")
        elif msg is not None and case.field is not None and case.field not in msg:
            problems.append(f"{case.name}: the message does not name {case.field}: {msg[:200]}")
        if cpu >= BUDGET:
            problems.append(f"{case.name}: {cpu * 1e3:.1f} ms of CPU")
    assert not problems, "\n".join(problems)
    assert stored_items(hostile_env) == []
    assert len(cases) > 30, "the catalogue lost its cases"
    print(f"{entry}: {len(cases)} hostile inputs, worst {worst[0] * 1e3:.2f} ms CPU ({worst[1]})")


def test_the_catalogue_fills_each_body_limit():
    """The cases are as large as each entry point allows (else the CPU bound proves little)."""
    biggest = {}
    for case in CASES:
        if case.field and case.entry in ("pay", "pay_notify", "pay_return"):
            biggest[case.entry] = max(biggest.get(case.entry, 0), len(case.event.get("body") or case.event["rawQueryString"]))
    assert biggest["pay"] > hostile.PAY_LIMIT - 64
    assert biggest["pay_notify"] > hostile.FORM_LIMIT * 4 // 3 - 512  # base64, as API Gateway passes forms
    assert biggest["pay_return"] > hostile.FORM_LIMIT - 512


@pytest.mark.parametrize("field", hostile.PAY_FIELDS)
def test_a_number_decimal_cannot_hold_is_a_400_naming_the_field(hostile_env, field):
    """Issue 11 #2: before the fix, ``1e9999999999999999999`` raised InvalidOperation: a 500."""
    body = hostile.PAY_GOOD | {}
    raw = json.dumps({**body, field: "@"}).replace('"@"', "1e9999999999999999999").encode()
    reply = pay(hostile.pay_event(raw), None)
    assert reply["statusCode"] == 400, reply
    assert json.loads(reply["body"])["msg"].startswith(f"{field} is a number this API cannot read")
    assert stored_items(hostile_env) == []


def test_a_bad_number_deep_in_the_body_is_named_by_its_path(hostile_env):
    raw = json.dumps({**hostile.PAY_GOOD, "extra": {"items": [1, "@"]}}).replace('"@"', "1e-9999999999999999999").encode()
    reply = pay(hostile.pay_event(raw), None)
    assert reply["statusCode"] == 400
    assert json.loads(reply["body"])["msg"].startswith("extra.items[1] is a number this API cannot read")


def test_a_normal_request_still_passes_every_parser(hostile_env):
    """The bounds refuse nothing ordinary: each entry point's normal request parses."""
    normal = hostile.normal_events(APP_ID, KEYS.private_key)
    for entry, parse in hostile.parsers(APP_ID, KEYS.public_key).items():
        parse(normal[entry])
