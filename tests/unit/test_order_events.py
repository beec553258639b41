"""shared/domain/events.py: every transition of the state table yields exactly its documented
event, and nothing else does (README "Order events")."""
from dataclasses import replace

import pytest

from shared.domain.events import ORDER_CLOSED, ORDER_PAID, ORDER_REFUNDED, event_id, order_events
from shared.domain.orders import CLOSED, PAID, REFUND_DONE, REFUND_PENDING, UNPAID, Order, Refund

AT = "2026-12-02T10:00:00+08:00"
UNPAID_ORDER = Order("ORDER_1_abc", "PROD_1", "USER_1", "Demo", 1000, reconcile_at="2026-12-02T10:05:00+08:00")
PAID_ORDER = replace(UNPAID_ORDER, status=PAID, trade_no="2026120222001", pay_date="2026-12-02T10:00:00+08:00", reconcile_at=None)


def refunded(order, key, cents, status=REFUND_DONE):
    refunds = {**order.refunds, key: Refund(cents, status, "2026-12-02T11:00:00+08:00", "2026-12-02T11:00:05+08:00" if status == REFUND_DONE else None)}
    return replace(order, refunds=refunds, refunded_cents=order.refunded_cents + cents)


def kinds(before, after):
    return [event.detail_type for event in order_events(before, after, AT)]


@pytest.mark.parametrize("before, after, expected", [
    (None, UNPAID_ORDER, []),  # create (pay, add_order)
    (UNPAID_ORDER, replace(UNPAID_ORDER, reconcile_tries=1), []),  # reconcile pushes it back
    (UNPAID_ORDER, PAID_ORDER, [ORDER_PAID]),  # 0 -> 1 (notify, reconcile)
    (replace(UNPAID_ORDER, status=CLOSED), PAID_ORDER, [ORDER_PAID]),  # 2 -> 1 (closed unpaid, paid late)
    (PAID_ORDER, PAID_ORDER, []),  # a duplicate notify writes nothing new
    (UNPAID_ORDER, replace(UNPAID_ORDER, status=CLOSED), [ORDER_CLOSED]),  # 0 -> 2
    (replace(UNPAID_ORDER, status=CLOSED), replace(UNPAID_ORDER, status=CLOSED), []),
    (PAID_ORDER, refunded(PAID_ORDER, "R1", 300, REFUND_PENDING), []),  # reserved, not yet refunded
    (refunded(PAID_ORDER, "R1", 300, REFUND_PENDING), refunded(PAID_ORDER, "R1", 300), [ORDER_REFUNDED]),
    (PAID_ORDER, refunded(PAID_ORDER, "R1", 1000), [ORDER_REFUNDED]),  # refunded in one call
    (refunded(PAID_ORDER, "R1", 1000), refunded(PAID_ORDER, "R1", 1000), []),  # a repeat
    (UNPAID_ORDER, refunded(PAID_ORDER, "A1", 1000), [ORDER_PAID, ORDER_REFUNDED]),  # paid and refunded at Alipay, one write
    (PAID_ORDER, None, []),  # a deleted row
])
def test_each_transition_yields_its_event(before, after, expected):
    assert kinds(before, after) == expected


def test_paid_carries_what_a_shop_ships_on():
    (event,) = order_events(UNPAID_ORDER, PAID_ORDER, AT)
    assert event.detail == {
        "eventId": event_id("ORDER_1_abc", ORDER_PAID), "outTradeNo": "ORDER_1_abc", "userId": "USER_1", "productId": "PROD_1",
        "totalAmount": 1000, "tradeNo": "2026120222001", "status": PAID, "time": AT, "payDate": PAID_ORDER.pay_date,
    }


def test_partial_then_full_refund():
    once = refunded(PAID_ORDER, "R1", 300)
    twice = refunded(once, "R2", 700)
    (first,) = order_events(PAID_ORDER, once, AT)
    (second,) = order_events(once, twice, AT)
    assert (first.detail["refundAmount"], first.detail["refundedAmount"], first.detail["fullyRefunded"]) == (300, 300, False)
    assert (second.detail["refundAmount"], second.detail["refundedAmount"], second.detail["fullyRefunded"]) == (700, 1000, True)
    assert second.detail["outRequestNo"] == "R2" and first.event_id != second.event_id


def test_event_ids_depend_on_the_transition_only():
    again = order_events(UNPAID_ORDER, PAID_ORDER, "2026-12-03T09:00:00+08:00")  # redelivered a day later
    assert again[0].event_id == order_events(UNPAID_ORDER, PAID_ORDER, AT)[0].event_id
    other = replace(PAID_ORDER, order_num="ORDER_2_abc")
    assert order_events(replace(UNPAID_ORDER, order_num="ORDER_2_abc"), other, AT)[0].event_id != again[0].event_id
    assert len({event_id("ORDER_1_abc", kind) for kind in (ORDER_PAID, ORDER_CLOSED, ORDER_REFUNDED)}) == 3
