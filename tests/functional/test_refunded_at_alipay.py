"""Issue 11 #3 on moto: trades Alipay paid and then refunded (in its console, or by another system)
end paid AND refunded at Alipay, through the one transition — notify, reconcile and the bill alike.
Each test is one new row of the state table (README, "Status changes")."""
from datetime import timedelta

import pytest

from functions.pay_notify.handler import handler as pay_notify
from local import alipay
from shared import reconcile, refunds
from shared.domain import clock
from shared.domain.orders import (
    CLOSED, MADE_AT_ALIPAY, PAID, REFUND_DONE, REFUND_PENDING, UNPAID, AlipayRefund, Order, Outcome, Recheck,
    apply_alipay_refund,
)
from shared.domain.validation import RefundRequest

from tests.conftest import APP_ID, TABLE, notify_event
from tests.emulated_alipay import EmulatedAlipay

ORDER = "ORDER_1795000000000_ref"
TRADE_NO = "2026112622001400000000000042"
TOTAL = 19801
NOW = clock.now().replace(microsecond=0)
PAID_AT = "2026-11-26 21:46:15"
REFUND_TIME = "2026-11-26 22:10:05.123"


@pytest.fixture
def fake(app_keys, alipay_keys):
    return EmulatedAlipay(app_keys, alipay_keys)


def add(store, status=UNPAID, **kwargs):
    created = NOW - timedelta(hours=1)
    store.create(Order(ORDER, "P1", "U1", "order", TOTAL, status=status, order_date=clock.iso(created),
                       reconcile_at=clock.iso(created) if status != PAID else None, **kwargs))


def deliver(keys, **fields):
    params = alipay.notify_params(**(dict(app_id=APP_ID, out_trade_no=ORDER, total_amount="198.01", trade_no=TRADE_NO) | fields))
    return pay_notify(notify_event(alipay.sign_notify(params, keys.private_key)))["body"]


def refund_close(keys, refund_fee="198.01", out_biz_no="CONSOLE20261126221005000001", **fields):
    """The TRADE_CLOSED notify of a full refund made at Alipay, with the fields Alipay sends."""
    return deliver(keys, trade_status="TRADE_CLOSED", refund_fee=refund_fee, gmt_refund=REFUND_TIME,
                   gmt_payment=PAID_AT, gmt_close="2026-11-26 22:10:05", out_biz_no=out_biz_no, **fields)


def in_index(client):
    item = client.get_item(TableName=TABLE, Key={"orderNum": {"S": ORDER}}, ConsistentRead=True)["Item"]
    return "reconcileAt" in item or "reconcileShard" in item


@pytest.mark.parametrize("status", [UNPAID, CLOSED])
def test_the_issue_sequence_ends_paid_and_refunded_at_alipay(store, dynamodb, alipay_keys, status):
    """0 or 2 + TRADE_CLOSED proving a payment -> 1, refunded at Alipay; the retried TRADE_SUCCESS
    that arrives after it is a duplicate."""
    add(store, status)
    assert refund_close(alipay_keys) == "success"
    order = store.get(ORDER)
    assert (order.status, order.trade_no, order.pay_date) == (PAID, TRADE_NO, "2026-11-26T21:46:15+08:00")
    assert order.refunded_cents == TOTAL
    [(key, refund)] = order.refunds.items()
    assert key == "CONSOLE20261126221005000001"
    assert (refund.cents, refund.status, refund.origin, refund.refunded_at) == (
        TOTAL, REFUND_DONE, MADE_AT_ALIPAY, "2026-11-26T22:10:05+08:00")
    assert not in_index(dynamodb)  # settled: reconcile looks at it no more

    assert deliver(alipay_keys, trade_status="TRADE_SUCCESS", gmt_payment=PAID_AT) == "success"  # Alipay's retry
    assert refund_close(alipay_keys) == "success"  # and a repeat of the refund's
    assert store.get(ORDER) == order


def test_a_close_with_only_gmt_payment_is_a_full_refund(store, alipay_keys):
    add(store)
    assert deliver(alipay_keys, trade_status="TRADE_CLOSED", gmt_payment=PAID_AT, gmt_close="2026-11-26 22:10:05") == "success"
    order = store.get(ORDER)
    assert order.status == PAID and order.refunded_cents == TOTAL
    assert [r.origin for r in order.refunds.values()] == [MADE_AT_ALIPAY]


def test_a_plain_close_still_closes_and_a_closed_order_can_still_be_paid(store, alipay_keys):
    add(store)
    assert deliver(alipay_keys, trade_status="TRADE_CLOSED", gmt_close="2026-11-26 22:10:05") == "success"
    assert store.get(ORDER).status == CLOSED and store.get(ORDER).refunds == {}
    assert deliver(alipay_keys, trade_status="TRADE_SUCCESS", gmt_payment=PAID_AT) == "success"
    assert store.get(ORDER).status == PAID and store.get(ORDER).refunded_cents == 0


def test_a_proving_close_with_another_amount_changes_nothing(store, alipay_keys):
    add(store)
    assert refund_close(alipay_keys, total_amount="1.00", refund_fee="1.00") == "fail"
    assert store.get(ORDER).status == UNPAID and store.get(ORDER).refunds == {}


def test_a_refund_fee_above_the_trade_is_refused(store, alipay_keys):
    add(store)
    assert refund_close(alipay_keys, refund_fee="198.02") == "fail"
    assert store.get(ORDER).status == UNPAID


def test_a_partial_refund_at_alipay_on_a_paid_order_reaches_alipays_figure(store, alipay_keys):
    """1 + TRADE_SUCCESS with refund_fee -> 1, refundedAmount = Alipay's figure; repeats add nothing."""
    add(store, PAID, trade_no=TRADE_NO)
    for _ in range(2):
        assert deliver(alipay_keys, refund_fee="50.00", gmt_refund=REFUND_TIME, out_biz_no="EXT1") == "success"
    order = store.get(ORDER)
    assert order.status == PAID and order.refunded_cents == 5000
    assert order.refunds["EXT1"].origin == MADE_AT_ALIPAY and order.refunds["EXT1"].cents == 5000
    # Then the rest, in the console too: the full refund's TRADE_CLOSED names Alipay's total.
    assert refund_close(alipay_keys, out_biz_no="EXT2") == "success"
    order = store.get(ORDER)
    assert order.status == PAID and order.refunded_cents == TOTAL and order.refunds["EXT2"].cents == TOTAL - 5000


def test_a_partial_refund_at_alipay_before_the_payment_notify_pays_and_records_it(store, alipay_keys):
    """0 + TRADE_SUCCESS with refund_fee (the payment's own notify was lost) -> 1 with the refund."""
    add(store)
    assert deliver(alipay_keys, gmt_payment=PAID_AT, refund_fee="10.00", gmt_refund=REFUND_TIME, out_biz_no="EXT1") == "success"
    order = store.get(ORDER)
    assert order.status == PAID and order.refunded_cents == 1000 and order.refunds["EXT1"].status == REFUND_DONE


def test_our_own_refunds_are_never_counted_twice(store, fake, alipay_keys):
    add(store, PAID, trade_no=TRADE_NO)
    fake.add_trade(ORDER, "198.01", "TRADE_SUCCESS")
    assert refunds.refund(store, fake.gateway(), RefundRequest(ORDER, "R1", 3000, None)).code == 200
    assert deliver(alipay_keys, refund_fee="30.00", gmt_refund=REFUND_TIME, out_biz_no="R1") == "success"  # R1's own notify
    assert store.get(ORDER).refunded_cents == 3000 and set(store.get(ORDER).refunds) == {"R1"}
    # A console refund of 20.00 after ours: Alipay's figure is 50.00, 20.00 of it new.
    assert deliver(alipay_keys, refund_fee="50.00", gmt_refund=REFUND_TIME, out_biz_no="EXT9") == "success"
    order = store.get(ORDER)
    assert order.refunded_cents == 5000 and order.refunds["EXT9"].cents == 2000 and order.refunds["R1"].origin is None


def test_alipays_notify_settles_our_pending_refund(store, alipay_keys):
    """Our refund's answer was lost (PENDING); Alipay's refund notify (out_biz_no = our outRequestNo) settles it."""
    add(store, PAID, trade_no=TRADE_NO)
    reserved = refunds.Refund(4000, REFUND_PENDING, clock.iso(), attempt="a1")
    assert store.add_refund(ORDER, TOTAL, "R1", reserved)[0]
    assert deliver(alipay_keys, refund_fee="40.00", gmt_refund=REFUND_TIME, out_biz_no="R1") == "success"
    order = store.get(ORDER)
    assert order.refunded_cents == 4000 and order.refunds["R1"].status == REFUND_DONE
    assert order.refunds["R1"].refunded_at == "2026-11-26T22:10:05+08:00" and order.refunds["R1"].origin is None


def test_reordered_reports_reach_the_highest_figure_once(store):
    """The one entry point the bill uses too: cumulative figures, in any order, any number of times."""
    add(store, PAID, trade_no=TRADE_NO)
    later, earlier = AlipayRefund(5000, "B", clock.iso()), AlipayRefund(3000, "A", clock.iso())
    assert apply_alipay_refund(store, ORDER, later).outcome is Outcome.APPLIED
    assert apply_alipay_refund(store, ORDER, earlier).outcome is Outcome.ALREADY
    assert apply_alipay_refund(store, ORDER, later).outcome is Outcome.ALREADY
    assert store.get(ORDER).refunded_cents == 5000


def test_a_refund_report_on_an_unpaid_order_is_not_applied(store):
    add(store)
    assert apply_alipay_refund(store, ORDER, AlipayRefund(100, "X", clock.iso())).outcome is Outcome.MISMATCH
    assert apply_alipay_refund(store, "ORDER_0_none", AlipayRefund(100, "X", clock.iso())).outcome is Outcome.NOT_FOUND


POLICY = reconcile.Policy(min_age=timedelta(minutes=5), close_after=timedelta(minutes=30), max_orders=100)


@pytest.mark.parametrize("status", [UNPAID, CLOSED])
def test_reconcile_reads_a_closed_trade_with_send_pay_date_as_paid_and_refunded(store, fake, status):
    """alipay.trade.query: TRADE_CLOSED with send_pay_date (only a paid trade has one) -> paid and
    refunded in full at Alipay, out of the index."""
    add(store, status)
    fake.add_trade(ORDER, "198.01", "TRADE_SUCCESS")
    fake.set_status(ORDER, "TRADE_CLOSED")  # refunded in full in the console; its notify lost
    report = reconcile.run(store, fake.gateway(), POLICY, now=NOW)
    assert report.actions == {"paid_refunded": 1}
    order = store.get(ORDER)
    assert order.status == PAID and order.refunded_cents == TOTAL and order.reconcile_at is None
    assert [(r.origin, r.status) for r in order.refunds.values()] == [(MADE_AT_ALIPAY, REFUND_DONE)]


def test_reconcile_still_closes_a_trade_closed_unpaid(store, fake):
    add(store)
    fake.add_trade(ORDER, "198.01", "TRADE_CLOSED")
    assert reconcile.run(store, fake.gateway(), POLICY, now=NOW).actions == {"closed": 1}
    assert store.get(ORDER).status == CLOSED and store.get(ORDER).refunds == {}


def test_recheck_is_unused_by_a_proving_close(store):
    """A close that proves a payment is never a local close, whatever the caller passes."""
    from shared.domain.orders import CLOSED_TRADE_STATUS, apply_trade_status  # noqa: PLC0415

    add(store)
    result = apply_trade_status(store, ORDER, CLOSED_TRADE_STATUS, TOTAL, TRADE_NO, clock.now(),
                                recheck=Recheck(clock.iso(), 1))
    assert result.outcome is Outcome.APPLIED and store.get(ORDER).status == PAID


@pytest.mark.parametrize("fee", ["abc", "1.001", "-1.00"])
def test_a_malformed_refund_fee_is_refused_and_changes_nothing(store, alipay_keys, fee):
    add(store)
    assert deliver(alipay_keys, gmt_payment=PAID_AT, refund_fee=fee, out_biz_no="X") == "fail"
    assert store.get(ORDER).status == UNPAID


def test_a_zero_refund_fee_is_no_refund(store, alipay_keys):
    add(store)
    assert deliver(alipay_keys, gmt_payment=PAID_AT, refund_fee="0.00") == "success"
    assert store.get(ORDER).status == PAID and store.get(ORDER).refunds == {}


def test_the_bill_reports_single_refunds_by_their_own_amount(store):
    """The daily bill names each refund (out_request_no, amount): recorded once whatever else reported it."""
    add(store, PAID, trade_no=TRADE_NO)
    line = AlipayRefund(None, "CONSOLE_7", clock.iso(), cents=1500)
    assert apply_alipay_refund(store, ORDER, line).outcome is Outcome.APPLIED
    assert apply_alipay_refund(store, ORDER, line).outcome is Outcome.ALREADY  # the bill read twice
    # its notify (the cumulative figure, same out_biz_no) then adds nothing
    assert apply_alipay_refund(store, ORDER, AlipayRefund(1500, "CONSOLE_7", clock.iso())).outcome is Outcome.ALREADY
    order = store.get(ORDER)
    assert order.refunded_cents == 1500 and order.refunds["CONSOLE_7"].origin == MADE_AT_ALIPAY
    # our own refund named by the bill with another amount is a discrepancy, not a write
    assert store.add_refund(ORDER, TOTAL, "R1", refunds.Refund(500, REFUND_PENDING, clock.iso(), attempt="t"))[0]
    assert apply_alipay_refund(store, ORDER, AlipayRefund(None, "R1", clock.iso(), cents=600)).outcome is Outcome.MISMATCH
    assert apply_alipay_refund(store, ORDER, AlipayRefund(None, "R1", clock.iso(), cents=500)).outcome is Outcome.APPLIED
    assert store.get(ORDER).refunds["R1"].status == REFUND_DONE and store.get(ORDER).refunded_cents == 2000
