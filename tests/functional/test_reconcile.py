"""reconcile on moto's DynamoDB against a fake Alipay: dropped notifies, abandoned orders, bounds,
and the sparse reconcile index: backoff, late payments after a local close, the 15-day bound."""
import itertools
import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.add_order.handler import handler as add_order
from functions.pay_notify.handler import handler as pay_notify
from functions.reconcile.handler import handler as reconcile_handler
from functions.reconcile_worker.handler import handler as worker_handler
from local import alipay
from shared.domain import clock
from shared.alipay import gateway as gateway_module
from shared import reconcile
from shared.aws import repository
from shared.domain.orders import CLOSED, PAID, RECONCILE_SHARDS, UNPAID, Order, Recheck, reconcile_shard

from tests.conftest import APP_ID, TABLE, notify_event
from tests.emulated_alipay import EmulatedAlipay
from tests.spy import Spy

NOW = clock.now().replace(microsecond=0)
POLICY = reconcile.Policy(min_age=timedelta(minutes=5), close_after=timedelta(minutes=30), max_orders=100)
INDEX_ATTRIBUTES = {"reconcileShard", "reconcileAt", "reconcileTries"}


@pytest.fixture
def fake(app_keys, alipay_keys):
    return EmulatedAlipay(app_keys, alipay_keys)


def add(store, order_num, age, cents=19801, status=UNPAID):
    """An order created ``age`` ago; an unpaid one is in the index, first due ``min_age`` after creation."""
    created = NOW - age
    first = clock.iso(created + POLICY.min_age) if status == UNPAID else None
    store.create(Order(order_num, "P1", "U1", "order", cents, status=status, order_date=clock.iso(created), reconcile_at=first))


def run(store, fake, **kwargs):
    return reconcile.run(store, fake.gateway(), kwargs.pop("policy", POLICY), now=kwargs.pop("now", NOW), **kwargs)


def indexed(client):
    """orderNum -> reconcileAt of every order in the reconcile index (a test-only Scan of it)."""
    items = client.scan(TableName=TABLE, IndexName=repository.RECONCILE_INDEX)["Items"]
    return {item["orderNum"]["S"]: item["reconcileAt"]["S"] for item in items}


def item(client, order_num):
    return client.get_item(TableName=TABLE, Key={"orderNum": {"S": order_num}}, ConsistentRead=True)["Item"]


def queried(fake):
    return [biz["out_trade_no"] for method, biz in fake.calls if method == "alipay.trade.query"]


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
    assert not INDEX_ATTRIBUTES & set(item(store._client, "ORDER_A"))  # the paid write left the index
    assert run(store, fake, now=NOW + timedelta(days=1)).actions == {}


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
    action = ("closed" if opened else "closed_here") if expired else "waiting"
    assert run(store, fake).actions == {action: 1}
    assert fake.methods() == ["alipay.trade.query"] + (["alipay.trade.close"] if expired else [])
    assert store.get("ORDER_W").status == (CLOSED if expired else UNPAID)
    if opened:
        assert fake.trade("ORDER_W").status == ("TRADE_CLOSED" if expired else "WAIT_BUYER_PAY")
    # closed at Alipay: final, out of the index; waiting or closed here only: looked at again in 1 minute
    assert indexed(store._client) == ({} if opened and expired else {"ORDER_W": clock.iso(NOW + timedelta(minutes=1))})


def test_closed_at_alipay_is_closed_here_without_a_close_call(store, fake):
    add(store, "ORDER_C", timedelta(minutes=10))
    fake.add_trade("ORDER_C", "198.01", "TRADE_CLOSED")
    assert run(store, fake).actions == {"closed": 1}
    assert fake.methods() == ["alipay.trade.query"] and store.get("ORDER_C").status == CLOSED
    assert indexed(store._client) == {}


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
    assert run(store, fake).actions == {}  # moved on: next look in a minute
    assert run(store, fake, now=NOW + timedelta(minutes=1)).actions == {"paid": 1}
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
    # one look at a time, so the armed answer meets ORDER_N (due first), not whichever thread asks first
    assert run(store, fake, policy=replace(POLICY, concurrency=1)).actions == {"error": 1, "paid": 1}  # the pass goes on
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


def test_stuck_orders_step_aside_and_newer_lost_notifies_are_recovered(store, fake):
    """The review's case: the oldest orders never settle; with max_orders=2 a pass that always
    started at the oldest would never reach the newer order whose notify was lost."""
    for i in range(3):
        add(store, f"ORDER_S{i}", timedelta(hours=3 - i))  # Alipay says paid, with another amount
        fake.add_trade(f"ORDER_S{i}", "0.01", "TRADE_SUCCESS")
    add(store, "ORDER_NEW", timedelta(minutes=6))
    fake.add_trade("ORDER_NEW", "198.01", "TRADE_SUCCESS")
    spy = Spy(store._client)
    store._client = spy
    policy = reconcile.Policy(min_age=POLICY.min_age, close_after=POLICY.close_after, max_orders=2, concurrency=1)

    first = run(store, fake, policy=policy)
    assert first.actions == {"mismatch": 2} and not first.complete
    second = run(store, fake, policy=policy, now=NOW + timedelta(seconds=1))
    assert second.actions == {"mismatch": 1, "paid": 1} and second.complete
    assert queried(fake) == ["ORDER_S0", "ORDER_S1", "ORDER_S2", "ORDER_NEW"]
    assert store.get("ORDER_NEW").status == PAID
    assert "scan" not in spy.ops and spy.ops.count("query") == 2 * RECONCILE_SHARDS  # one Query per shard and pass


def test_an_inconclusive_order_is_looked_at_with_backoff(store, fake):
    add(store, "ORDER_B", timedelta(hours=1))
    fake.add_trade("ORDER_B", "0.01", "TRADE_SUCCESS")  # never settles: the amount differs
    looks, t = [], NOW
    while t <= NOW + timedelta(minutes=40):
        if run(store, fake, now=t).actions:
            looks.append(t - NOW)
        t += timedelta(seconds=30)
    assert looks == [timedelta(minutes=m) for m in (0, 1, 3, 7, 15, 31)]  # 1m, 2m, 4m, 8m, 16m apart
    assert store.get("ORDER_B").reconcile_tries == 6 and store.get("ORDER_B").status == UNPAID


def test_a_waiting_order_is_looked_at_again_when_it_expires_not_a_backoff_later(store, fake):
    add(store, "ORDER_X", timedelta(minutes=29, seconds=30))
    fake.add_trade("ORDER_X", "198.01")
    assert run(store, fake).actions == {"waiting": 1}
    assert indexed(store._client) == {"ORDER_X": clock.iso(NOW + timedelta(seconds=30))}  # its timeout, not 1 minute
    assert run(store, fake, now=NOW + timedelta(seconds=30)).actions == {"closed": 1}


def test_paid_and_closed_orders_are_not_in_the_index(store, fake, alipay_keys):
    """Sparse: the index holds the orders reconcile must look at, nothing else."""
    created = add_order({"productId": "P1", "userId": "U1", "orderName": "o", "totalAmount": 19801})["data"]
    assert created["reconcileAt"] > created["orderDate"] and 0 <= created["reconcileShard"] < RECONCILE_SHARDS
    add(store, "ORDER_CLOSED", timedelta(minutes=10))
    assert set(indexed(store._client)) == {created["orderNum"], "ORDER_CLOSED"}
    for order_num, status in ((created["orderNum"], "TRADE_SUCCESS"), ("ORDER_CLOSED", "TRADE_CLOSED")):
        notify = alipay.notify_params(app_id=APP_ID, out_trade_no=order_num, total_amount="198.01", trade_status=status)
        assert pay_notify(notify_event(alipay.sign_notify(notify, alipay_keys.private_key)))["body"] == "success"
    assert indexed(store._client) == {}
    assert store.get(created["orderNum"]).status == PAID and store.get("ORDER_CLOSED").status == CLOSED
    for order_num in (created["orderNum"], "ORDER_CLOSED"):
        assert not INDEX_ATTRIBUTES & set(item(store._client, order_num))


def test_a_late_payment_after_a_close_here_is_found_though_its_notify_is_lost(store, fake):
    add(store, "ORDER_L", timedelta(hours=1))
    assert run(store, fake).actions == {"closed_here": 1}  # Alipay knew no trade
    assert run(store, fake, now=NOW + timedelta(seconds=59)).actions == {}
    fake.add_trade("ORDER_L", "198.01", "TRADE_SUCCESS")  # the buyer opened the old orderStr and paid; no notify
    assert run(store, fake, now=NOW + timedelta(minutes=1)).actions == {"paid": 1}
    assert store.get("ORDER_L").status == PAID and indexed(store._client) == {}


def test_a_trade_opened_after_a_close_here_is_closed_at_alipay(store, fake):
    add(store, "ORDER_O", timedelta(hours=1))
    assert run(store, fake).actions == {"closed_here": 1}
    fake.add_trade("ORDER_O", "198.01")  # opened, not paid
    assert run(store, fake, now=NOW + timedelta(minutes=1)).actions == {"closed": 1}
    assert fake.trade("ORDER_O").status == "TRADE_CLOSED" and store.get("ORDER_O").status == CLOSED
    assert indexed(store._client) == {}  # closed at Alipay: final


def test_a_trade_closed_notify_takes_a_closed_here_order_out_of_the_index(store, fake, alipay_keys):
    add(store, "ORDER_N2", timedelta(hours=1))
    assert run(store, fake).actions == {"closed_here": 1}
    notify = alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_N2", total_amount="198.01", trade_status="TRADE_CLOSED")
    assert pay_notify(notify_event(alipay.sign_notify(notify, alipay_keys.private_key)))["body"] == "success"
    assert indexed(store._client) == {} and store.get("ORDER_N2").status == CLOSED


def test_a_close_here_is_looked_at_only_within_its_window(store, fake, caplog):
    policy = reconcile.Policy(close_after=timedelta(minutes=30), late_pay_window=timedelta(hours=2))
    add(store, "ORDER_E2", timedelta(minutes=30))
    end = NOW + timedelta(hours=2)  # created + close_after + late_pay_window
    looks, t = [], NOW
    while t <= end + timedelta(hours=1):
        report = run(store, fake, policy=policy, now=t)
        if report.actions:
            looks.append((t, report.actions))
        t += timedelta(minutes=1)
    assert looks[0] == (NOW, {"closed_here": 1}) and looks[-1] == (end, {"retired": 1})
    assert all(actions == {"waiting": 1} for _, actions in looks[1:-1]) and len(looks) < 12
    assert indexed(store._client) == {} and store.get("ORDER_E2").status == CLOSED
    assert "no payment within its window" in caplog.text


def test_an_order_first_closed_here_after_its_window_is_not_looked_at_again(store, fake):
    policy = reconcile.Policy(close_after=timedelta(minutes=30), late_pay_window=timedelta(hours=24))
    add(store, "ORDER_LATE", timedelta(days=2))  # e.g. reconcile was down for two days
    assert run(store, fake, policy=policy).actions == {"closed_here": 1}
    assert store.get("ORDER_LATE").status == CLOSED and indexed(store._client) == {}


def test_an_unpaid_order_is_looked_at_for_15_days_at_most(store, fake, caplog):
    add(store, "ORDER_15", timedelta(days=15))
    fake.add_trade("ORDER_15", "0.01", "TRADE_SUCCESS")
    with caplog.at_level(logging.ERROR):
        assert run(store, fake).actions == {"retired": 1}
    assert indexed(store._client) == {} and store.get("ORDER_15").status == UNPAID
    assert "after 15 days" in caplog.text and queried(fake) == ["ORDER_15"]  # a last look first


def test_a_stale_look_never_brings_a_settled_order_back(store, fake, alipay_keys):
    add(store, "ORDER_Z", timedelta(hours=1))
    (due,), _ = store.due_orders(clock.iso(NOW), 10)
    notify = alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_Z", total_amount="198.01")
    assert pay_notify(notify_event(alipay.sign_notify(notify, alipay_keys.private_key)))["body"] == "success"
    assert store.reschedule(due, Recheck(clock.iso(NOW + timedelta(minutes=1)), 1)) is False
    assert indexed(store._client) == {} and store.get("ORDER_Z").status == PAID


def test_of_two_overlapping_passes_only_one_moves_an_order(store, fake):
    add(store, "ORDER_P", timedelta(hours=1))
    (due,), _ = store.due_orders(clock.iso(NOW), 10)
    assert store.reschedule(due, Recheck(clock.iso(NOW + timedelta(minutes=1)), 1)) is True
    assert store.reschedule(due, Recheck(clock.iso(NOW + timedelta(minutes=1)), 1)) is False
    assert store.get("ORDER_P").reconcile_tries == 1


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_poison_order_first_in_the_index_never_stops_the_pass(store, fake, caplog, concurrency):
    """Issue 11 #5: an answer of unexpected shape (a trade_no that is a list) and a malformed row (a
    backfill's orderDate) are each that order's error: logged with its number, pushed back with
    the usual backoff, counted in ``errors``; the paid orders behind them are settled in the same pass."""
    add(store, "ORDER_POISON_ANSWER", timedelta(hours=3))
    fake.answer_for["ORDER_POISON_ANSWER"] = {
        "code": "10000", "msg": "Success", "out_trade_no": "ORDER_POISON_ANSWER", "trade_no": ["2026120222001400000000000009"],
        "trade_status": "TRADE_SUCCESS", "total_amount": "198.01", "send_pay_date": "2026-12-02 10:10:10",
    }
    store.create(Order("ORDER_POISON_ROW", "P1", "U1", "order", 19801, order_date="yesterday",
                       reconcile_at=clock.iso(NOW - timedelta(hours=2, minutes=54))))
    for n in range(5):
        add(store, f"ORDER_BEHIND_{n}", timedelta(hours=1))
        fake.add_trade(f"ORDER_BEHIND_{n}", "198.01", "TRADE_SUCCESS")
    (first, second, *_), _ = store.due_orders(clock.iso(NOW), 10)
    assert (first.order_num, second.order_num) == ("ORDER_POISON_ANSWER", "ORDER_POISON_ROW")  # earliest due

    report = run(store, fake, policy=replace(POLICY, concurrency=concurrency))
    assert report.to_dict() == {"examined": 7, "actions": {"paid": 5, "error": 2}, "errors": 2, "complete": True}
    assert all(store.get(f"ORDER_BEHIND_{n}").status == PAID for n in range(5))
    for poison in ("ORDER_POISON_ANSWER", "ORDER_POISON_ROW"):
        order = store.get(poison)
        assert order.status == UNPAID and order.reconcile_at == clock.iso(NOW + POLICY.backoff) and order.reconcile_tries == 1
        assert any(r.levelname == "ERROR" and poison in r.getMessage() and r.exc_info for r in caplog.records)
    later = NOW + POLICY.backoff
    assert run(store, fake, now=later).to_dict()["errors"] == 2  # still isolated, and backed off further
    assert store.get("ORDER_POISON_ROW").reconcile_at == clock.iso(later + 2 * POLICY.backoff)


def test_a_pass_stops_when_the_lambda_runs_out_of_time(store, fake):
    add(store, "ORDER_T", timedelta(hours=1))
    report = run(store, fake, time_left=lambda: 1.0)
    assert not report.complete and report.actions == {} and fake.calls == []


def emf_lines(out: str) -> list:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


@pytest.mark.parametrize("handler, event", [(reconcile_handler, {"source": "aws.events"}), (worker_handler, {})])
def test_without_a_worker_configured_a_pass_runs_in_place(store, fake, monkeypatch, capsys, handler, event):
    """The scheduled function without RECONCILE_WORKER_FUNCTION (a bare run), and the worker given
    every shard (`make reconcile`): one pass, its report, and its EMF line."""
    monkeypatch.delenv("RECONCILE_WORKER_FUNCTION", raising=False)
    add(store, "ORDER_H", timedelta(minutes=10))
    fake.add_trade("ORDER_H", "198.01", "TRADE_SUCCESS")
    monkeypatch.setattr(gateway_module, "http_post", fake)
    reply = handler(event, None)
    assert reply == {"examined": 1, "actions": {"paid": 1}, "errors": 0, "complete": True}
    (line,) = emf_lines(capsys.readouterr().out)
    assert {k: line[k] for k in ("ReconcileExamined", "ReconcileSettled", "ReconcileClosed", "ReconcileErrors", "Shard")} == {
        "ReconcileExamined": 1, "ReconcileSettled": 1, "ReconcileClosed": 0, "ReconcileErrors": 0, "Shard": "all"}


def test_a_worker_looks_at_its_own_shard_only(store, fake, monkeypatch, capsys):
    numbers = [f"ORDER_W{i}" for i in range(24)]
    for order_num in numbers:
        add(store, order_num, timedelta(minutes=10))
        fake.add_trade(order_num, "198.01", "TRADE_SUCCESS")
    monkeypatch.setattr(gateway_module, "http_post", fake)
    mine = sorted(n for n in numbers if reconcile_shard(n) == 3)
    reply = worker_handler({"shard": 3}, None)
    assert reply["actions"] == {"paid": len(mine)} and sorted(queried(fake)) == mine and mine
    assert emf_lines(capsys.readouterr().out)[0]["Shard"] == "3"
    for bad in ({"shard": 8}, {"shard": "3"}, {"shard": True}, {"shard": -1}):
        with pytest.raises(ValueError, match="shard"):
            worker_handler(bad, None)


def test_the_scheduled_pass_dispatches_one_worker_per_shard_with_orders_due(store, fake, capsys):
    """How late the most overdue look is (ReconcileOldestDueAge), and an invoke for each shard
    that has an order due, none for the others; a shard whose invoke fails is reported, the rest still go."""
    for order_num, age in (("ORDER_D0", timedelta(hours=2)), ("ORDER_D1", timedelta(minutes=30)), ("ORDER_D2", timedelta(minutes=6))):
        add(store, order_num, age)
    add(store, "ORDER_YOUNG", timedelta(minutes=1))  # not due yet
    due_shards = sorted({reconcile_shard(n) for n in ("ORDER_D0", "ORDER_D1", "ORDER_D2")})
    invoked = []
    result = reconcile.dispatch(store, invoked.append, now=NOW)
    assert invoked == [{"shard": s} for s in due_shards] and result.shards == due_shards and result.failed == []
    oldest = timedelta(hours=2) - POLICY.min_age
    assert result.oldest_due_age == oldest.total_seconds()
    (line,) = emf_lines(capsys.readouterr().out)
    assert line["ReconcileOldestDueAge"] == oldest.total_seconds()
    assert line["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "ReconcileOldestDueAge", "Unit": "Seconds"}]

    def flaky(event):
        if event["shard"] == due_shards[0]:
            raise RuntimeError("throttled")
        invoked.append(event)

    invoked.clear()
    result = reconcile.dispatch(store, flaky, now=NOW)
    assert result.failed == due_shards[:1] and result.shards == due_shards[1:] == [e["shard"] for e in invoked]
    assert reconcile.dispatch(store, invoked.append, now=NOW - timedelta(hours=3)).to_dict() == {
        "oldestDueAgeSeconds": 0.0, "dispatched": [], "failed": []}  # nothing due: no worker at all


@pytest.mark.parametrize("value", ["-1", "abc", "1.5"])
def test_malformed_policy_is_a_config_error(value):
    from shared.environment import ConfigError

    with pytest.raises(ConfigError):
        reconcile.Policy.from_env({"RECONCILE_MAX_ORDERS": value})
    assert reconcile.Policy.from_env({}).close_after == timedelta(minutes=30)


def test_a_payment_after_the_close_still_wins(store, fake, alipay_keys):
    """Closed because Alipay knew no trade; the buyer then opens the old orderStr and pays."""
    add(store, "ORDER_L", timedelta(hours=1))
    assert run(store, fake).actions == {"closed_here": 1}
    late = alipay.sign_notify(alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_L", total_amount="198.01"),
                              alipay_keys.private_key)
    assert pay_notify(notify_event(late))["body"] == "success"
    assert store.get("ORDER_L").status == PAID


def test_backfill_puts_orders_from_before_the_index_into_it(store, fake):
    """Rows written before the reconcile index lack its attributes; the one-off backfill enlists
    the unpaid ones and the closed ones still within the late-pay window, and nothing else."""
    from deploy.backfill_reconcile import backfill

    for order_num, age, status in (("ORDER_OLD0", timedelta(hours=2), UNPAID), ("ORDER_OLD2", timedelta(hours=3), CLOSED),
                                   ("ORDER_OLD2_GONE", timedelta(days=3), CLOSED), ("ORDER_OLD1", timedelta(hours=1), PAID)):
        store.create(Order(order_num, "P1", "U1", "order", 19801, status=status, order_date=clock.iso(NOW - age)))
    add(store, "ORDER_NEW", timedelta(minutes=1))  # already in the index: left as it is
    before = indexed(store._client)
    assert backfill(store._client, TABLE, NOW, POLICY, dry_run=True) == {"unpaid": 1, "closed": 1, "changed": 0}
    assert indexed(store._client) == before
    assert backfill(store._client, TABLE, NOW, POLICY) == {"unpaid": 1, "closed": 1, "changed": 0}
    assert indexed(store._client) == {**before, "ORDER_OLD0": clock.iso(NOW), "ORDER_OLD2": clock.iso(NOW)}
    assert backfill(store._client, TABLE, NOW, POLICY) == {"unpaid": 0, "closed": 0, "changed": 0}  # idempotent

    fake.add_trade("ORDER_OLD0", "198.01", "TRADE_SUCCESS")  # its notify was lost before the upgrade
    assert run(store, fake).actions == {"paid": 1, "waiting": 1}  # the closed one: no trade yet, looked at again
    assert store.get("ORDER_OLD0").status == PAID and set(indexed(store._client)) == {"ORDER_OLD2", "ORDER_NEW"}


SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
EVENTS = st.lists(st.one_of(
    st.tuples(st.just("wait"), st.integers(1, 12 * 60)),  # minutes
    st.sampled_from([("open",), ("pay",), ("notify",), ("pass",)]),
), max_size=14)
_orders = itertools.count()


@settings(max_examples=20, **SETTINGS)
@given(events=EVENTS)
def test_the_index_holds_the_orders_that_may_still_change_and_late_payments_are_found(store, fake, alipay_keys, events):
    """Any interleaving of the buyer (opens, pays: its notify lost), notifies and passes: a paid
    order or one closed at Alipay is never in the index, an unpaid one always is; and once the
    order's looks run out, a payment made within the window is never missed."""
    order_num, t, paid_at = f"ORDER_PROP_{next(_orders)}", NOW, None
    store.create(Order(order_num, "P1", "U1", "order", 19801, order_date=clock.iso(NOW),
                       reconcile_at=clock.iso(NOW + POLICY.min_age)))

    def check():
        order, trade = store.get(order_num), fake.trade(order_num)
        closed_at_alipay = trade is not None and trade.status == "TRADE_CLOSED"
        if order.status == PAID or closed_at_alipay:
            assert order.reconcile_at is None and order.status == (CLOSED if closed_at_alipay else PAID)
        elif order.status == UNPAID or t < NOW + POLICY.close_after + POLICY.late_pay_window:
            assert order.reconcile_at is not None  # unpaid, or closed here only and within its window

    for event in events:
        trade = fake.trade(order_num)
        if event[0] == "wait":
            t += timedelta(minutes=event[1])
        elif event[0] == "open" and trade is None:
            fake.add_trade(order_num, "198.01")
        elif event[0] == "pay" and (trade is None or trade.status == "WAIT_BUYER_PAY"):
            if trade is None:
                fake.add_trade(order_num, "198.01", "TRADE_SUCCESS")
            else:
                fake.set_status(order_num, "TRADE_SUCCESS")
            paid_at = t
        elif event[0] == "notify" and trade is not None and trade.status == "TRADE_SUCCESS":
            params = alipay.notify_params(app_id=APP_ID, out_trade_no=order_num, total_amount="198.01", trade_no=trade.trade_no)
            assert pay_notify(notify_event(alipay.sign_notify(params, alipay_keys.private_key)))["body"] == "success"
        elif event[0] == "pass":
            run(store, fake, now=t)
        check()
    for _ in range(60):  # follow the order's own looks until it leaves the index
        due = store.get(order_num).reconcile_at
        if due is None:
            break
        t = max(t, datetime.fromisoformat(due))
        run(store, fake, now=t)
        check()
    else:
        pytest.fail("the order is still looked at after 60 looks")
    if paid_at is not None and paid_at <= NOW + POLICY.close_after + POLICY.late_pay_window:
        assert store.get(order_num).status == PAID
    assert fake.trade(order_num) is None or fake.trade(order_num).status != "WAIT_BUYER_PAY"  # never left open
