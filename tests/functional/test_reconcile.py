"""reconcile on moto's DynamoDB against a fake Alipay: dropped notifies, abandoned orders, bounds."""
import json
from datetime import timedelta

import pytest

from functions.pay_notify.handler import handler as pay_notify
from functions.reconcile.handler import handler as reconcile_handler
from local import alipay
from shared import clock, gateway as gateway_module, reconcile
from shared.orders import CLOSED, PAID, UNPAID, Order

from ..conftest import APP_ID, notify_event
from ..emulated_alipay import EmulatedAlipay

NOW = clock.now()
POLICY = reconcile.Policy(min_age=timedelta(minutes=5), close_after=timedelta(minutes=30), max_orders=100)


class Spy:
    """Wraps the DynamoDB client to record which operations were used."""

    def __init__(self, client):
        self._client, self.ops = client, []

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if callable(attr) and not name.startswith("_") and name != "exceptions":
            self.ops.append(name)
        return attr


@pytest.fixture
def fake(app_keys, alipay_keys):
    return EmulatedAlipay(app_keys, alipay_keys)


def add(store, order_num, age, cents=19801, status=UNPAID):
    store.create(Order(order_num, "P1", "U1", "order", cents, status=status, order_date=clock.iso(NOW - age)))


def run(store, fake, **kwargs):
    return reconcile.run(store, fake.gateway(), kwargs.pop("policy", POLICY), now=kwargs.pop("now", NOW), **kwargs)


def test_dropped_notify_is_recovered_and_the_late_notify_changes_nothing(store, fake, alipay_keys):
    add(store, "ORDER_A", timedelta(minutes=10))
    fake.add_trade("ORDER_A", "198.01", "TRADE_SUCCESS")
    report = run(store, fake)
    assert report.actions == {"paid": 1} and report.complete
    order = store.get("ORDER_A")
    assert order.status == PAID and order.trade_no == fake.trade("ORDER_A").trade_no and order.pay_date

    late = alipay.sign_notify(alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_A", total_amount="198.01",
                                                   trade_no=order.trade_no), alipay_keys.private_key)
    assert pay_notify(notify_event(late))["body"] == "success"
    assert store.get("ORDER_A") == order
    assert run(store, fake).actions == {}  # paid orders are no longer in the unpaid index


def test_young_orders_are_left_to_the_notify(store, fake):
    add(store, "ORDER_Y", timedelta(minutes=2))
    fake.add_trade("ORDER_Y", "198.01", "TRADE_SUCCESS")
    assert run(store, fake).actions == {} and fake.calls == []
    assert store.get("ORDER_Y").status == UNPAID


@pytest.mark.parametrize("age,expired", [(timedelta(minutes=20), False), (timedelta(minutes=31), True)])
@pytest.mark.parametrize("opened", [True, False], ids=["WAIT_BUYER_PAY", "TRADE_NOT_EXIST"])
def test_unpaid_orders_are_closed_at_alipay_then_here_once_past_timeout_express(store, fake, opened, age, expired):
    add(store, "ORDER_W", age)
    if opened:
        fake.add_trade("ORDER_W", "198.01")
    assert run(store, fake).actions == ({"closed": 1} if expired else {"waiting": 1})
    assert fake.methods() == ["alipay.trade.query"] + (["alipay.trade.close"] if expired else [])
    assert store.get("ORDER_W").status == (CLOSED if expired else UNPAID)
    if opened:
        assert fake.trade("ORDER_W").status == ("TRADE_CLOSED" if expired else "WAIT_BUYER_PAY")


def test_closed_at_alipay_is_closed_here_without_a_close_call(store, fake):
    add(store, "ORDER_C", timedelta(minutes=10))
    fake.add_trade("ORDER_C", "198.01", "TRADE_CLOSED")
    assert run(store, fake).actions == {"closed": 1}
    assert fake.methods() == ["alipay.trade.query"] and store.get("ORDER_C").status == CLOSED


def test_paid_between_query_and_close_is_not_closed_and_the_next_pass_marks_it_paid(store, fake):
    add(store, "ORDER_R", timedelta(hours=1))
    fake.add_trade("ORDER_R", "198.01")

    def buyer_pays_after_the_query(method, biz):
        if method == "alipay.trade.query":
            fake.set_status("ORDER_R", "TRADE_SUCCESS")

    fake.after = buyer_pays_after_the_query
    assert run(store, fake).actions == {"error": 1}
    assert fake.methods() == ["alipay.trade.query", "alipay.trade.close"]
    assert store.get("ORDER_R").status == UNPAID and fake.trade("ORDER_R").status == "TRADE_SUCCESS"
    fake.after = None
    assert run(store, fake).actions == {"paid": 1}
    assert store.get("ORDER_R").status == PAID


def test_amount_mismatch_is_never_applied(store, fake):
    add(store, "ORDER_M", timedelta(hours=1))
    fake.add_trade("ORDER_M", "0.01", "TRADE_SUCCESS")
    assert run(store, fake).actions == {"mismatch": 1}
    assert store.get("ORDER_M").status == UNPAID and fake.methods() == ["alipay.trade.query"]


@pytest.mark.parametrize("failure", [
    gateway_module.GatewayError("gateway unreachable: timeout"),
    {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "isp.unknow-error", "sub_msg": "系统繁忙"},
])
def test_no_answer_changes_nothing(store, fake, failure):
    add(store, "ORDER_E", timedelta(hours=1))
    if isinstance(failure, Exception):
        fake.fail_next = failure
    else:
        fake.answer_next = failure
    assert run(store, fake).actions == {"error": 1}
    assert store.get("ORDER_E").status == UNPAID and fake.methods() == ["alipay.trade.query"]


def test_a_paid_answer_without_its_amount_is_an_error_not_a_crash(store, fake):
    add(store, "ORDER_N", timedelta(hours=1))
    add(store, "ORDER_O", timedelta(minutes=50))
    fake.add_trade("ORDER_O", "198.01", "TRADE_SUCCESS")
    fake.answer_next = {"code": "10000", "msg": "Success", "out_trade_no": "ORDER_N", "trade_status": "TRADE_SUCCESS"}
    assert run(store, fake).actions == {"error": 1, "paid": 1}  # the pass goes on with the next order
    assert store.get("ORDER_N").status == UNPAID


def test_an_unsigned_trade_not_exist_never_closes(store, app_keys, alipay_keys):
    add(store, "ORDER_U", timedelta(hours=1))
    unsigned = json.dumps({"alipay_trade_query_response": {"code": "40004", "sub_code": "ACQ.TRADE_NOT_EXIST"}}).encode()
    calls = []
    client = gateway_module.AlipayGateway(app_id=APP_ID, private_key=app_keys.private_key,
                                          alipay_public_key=alipay_keys.public_key,
                                          transport=lambda *args: calls.append(args) or unsigned)
    assert reconcile.run(store, client, POLICY, now=NOW).actions == {"error": 1}
    assert len(calls) == 1 and store.get("ORDER_U").status == UNPAID


def test_bounded_passes_resume_oldest_first_without_a_scan(store, fake):
    for i in range(7):
        add(store, f"ORDER_{i}", timedelta(hours=10 - i))  # ORDER_0 is the oldest
    add(store, "ORDER_PAID", timedelta(hours=20), status=PAID)
    spy = Spy(store._client)
    store._client = spy
    policy = reconcile.Policy(min_age=POLICY.min_age, close_after=POLICY.close_after, max_orders=3)

    seen, cursor, passes = [], None, 0
    while True:
        report = run(store, fake, policy=policy, cursor=cursor)
        passes += 1
        seen += [biz["out_trade_no"] for method, biz in fake.calls if method == "alipay.trade.query"][len(seen):]
        if report.complete:
            break
        assert sum(report.actions.values()) == 3 and report.cursor
        cursor = reconcile.parse_cursor(json.loads(json.dumps(report.cursor)))  # survives a JSON round trip
    assert passes == 3 and seen == [f"ORDER_{i}" for i in range(7)]
    assert all(store.get(f"ORDER_{i}").status == CLOSED for i in range(7))
    assert "scan" not in spy.ops and "query" in spy.ops


def test_a_pass_stops_when_the_lambda_runs_out_of_time(store, fake):
    add(store, "ORDER_T", timedelta(hours=1))
    report = run(store, fake, time_left=lambda: 1.0)
    assert not report.complete and report.actions == {} and fake.calls == []


def test_handler_runs_a_pass_from_the_environment(store, fake, monkeypatch):
    add(store, "ORDER_H", timedelta(minutes=10))
    fake.add_trade("ORDER_H", "198.01", "TRADE_SUCCESS")
    monkeypatch.setattr(gateway_module, "http_post", fake)
    monkeypatch.setenv("RECONCILE_MIN_AGE_SECONDS", "60")
    reply = reconcile_handler({"source": "aws.events"}, None)
    assert reply == {"examined": 1, "actions": {"paid": 1}, "complete": True, "cursor": None}
    with pytest.raises(ValueError):
        reconcile_handler({"cursor": {"orderNum": 1}}, None)


@pytest.mark.parametrize("value", ["-1", "abc", "1.5"])
def test_malformed_policy_is_a_config_error(value):
    from shared.config import ConfigError

    with pytest.raises(ConfigError):
        reconcile.Policy.from_env({"RECONCILE_MAX_ORDERS": value})
    assert reconcile.Policy.from_env({}).close_after == timedelta(minutes=30)


def test_a_payment_after_the_close_still_wins(store, fake, alipay_keys):
    """Closed because Alipay knew no trade; the buyer then opens the old orderStr and pays."""
    add(store, "ORDER_L", timedelta(hours=1))
    assert run(store, fake).actions == {"closed": 1}
    late = alipay.sign_notify(alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_L", total_amount="198.01"),
                              alipay_keys.private_key)
    assert pay_notify(notify_event(late))["body"] == "success"
    assert store.get("ORDER_L").status == PAID
