"""Refunds on moto's DynamoDB against a fake Alipay: full, partial, idempotent, concurrent, lost answers."""
import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from functions.pay_notify.handler import handler as pay_notify
from functions.refund.handler import handler as refund_handler
from local import alipay
from shared.domain import clock
from shared.alipay import gateway as gateway_module
from shared import refunds
from shared.alipay.gateway import GatewayError
from shared.domain.orders import PAID, REFUND_DONE, REFUND_PENDING, UNPAID, Order
from shared.domain.validation import RefundRequest

from tests.conftest import APP_ID, notify_event
from tests.emulated_alipay import EmulatedAlipay

TOTAL = 19801


@pytest.fixture
def fake(app_keys, alipay_keys):
    return EmulatedAlipay(app_keys, alipay_keys)


@pytest.fixture
def paid_order(store, fake):
    order = Order("ORDER_P", "P1", "U1", "order", TOTAL, status=PAID, trade_no="2026112622001400000000000001",
                  order_date=clock.iso(clock.now() - timedelta(hours=1)))
    store.create(order)
    fake.add_trade("ORDER_P", "198.01", "TRADE_SUCCESS")
    return order


def ask(store, fake, out_request_no, cents=None, out_trade_no="ORDER_P", gateway=None):
    return refunds.refund(store, gateway or fake.gateway(), RefundRequest(out_trade_no, out_request_no, cents, "缺货"))


def refund_calls(fake):
    return [biz for method, biz in fake.calls if method == "alipay.trade.refund"]


def test_full_refund_keeps_the_order_paid_and_the_refund_notify_changes_nothing(store, fake, paid_order, alipay_keys):
    result = ask(store, fake, "R_FULL")
    assert result.code == 200 and result.refund.status == REFUND_DONE and result.refund.cents == TOTAL
    assert refund_calls(fake) == [{"out_trade_no": "ORDER_P", "refund_amount": "198.01", "out_request_no": "R_FULL",
                                   "refund_reason": "缺货"}]
    order = store.get("ORDER_P")
    assert order.status == PAID and order.refunded_cents == TOTAL and set(order.refunds) == {"R_FULL"}

    closed = alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_P", total_amount="198.01", trade_status="TRADE_CLOSED",
                                  refund_fee="198.01", gmt_refund="2026-11-26 19:00:00", out_biz_no="R_FULL")
    for _ in range(2):  # Alipay may deliver it more than once
        assert pay_notify(notify_event(alipay.sign_notify(closed, alipay_keys.private_key)))["body"] == "success"
    assert store.get("ORDER_P") == order
    assert ask(store, fake, "R_MORE").code == 409  # nothing left


def test_partial_refunds_add_up_to_at_most_the_paid_amount(store, fake, paid_order, alipay_keys):
    assert ask(store, fake, "R1", 5000).code == 200
    partial = alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_P", total_amount="198.01", refund_fee="50.00",
                                   out_biz_no="R1")
    before = store.get("ORDER_P")
    assert pay_notify(notify_event(alipay.sign_notify(partial, alipay_keys.private_key)))["body"] == "success"
    assert store.get("ORDER_P") == before

    assert ask(store, fake, "R2", 10000).code == 200
    too_much = ask(store, fake, "R3", 4802)
    assert too_much.code == 409 and "4801" in too_much.msg
    rest = ask(store, fake, "R4")
    assert rest.code == 200 and rest.refund.cents == 4801
    order = store.get("ORDER_P")
    assert order.refunded_cents == TOTAL and sorted(order.refunds) == ["R1", "R2", "R4"]
    assert [c["refund_amount"] for c in refund_calls(fake)] == ["50.00", "100.00", "48.01"]


def test_same_out_request_no_is_refunded_once(store, fake, paid_order):
    first = ask(store, fake, "R1", 1000)
    again = ask(store, fake, "R1", 1000)
    without_amount = ask(store, fake, "R1")
    assert (first.code, again.code, without_amount.code) == (200, 200, 200)
    assert again.msg == "already refunded" and len(refund_calls(fake)) == 1
    assert store.get("ORDER_P").refunded_cents == 1000
    other_amount = ask(store, fake, "R1", 2000)
    assert other_amount.code == 409 and store.get("ORDER_P").refunded_cents == 1000


def test_lost_answer_keeps_the_cents_reserved_until_a_retry_confirms(store, fake, paid_order):
    def answer_lost(url, query, body, timeout):
        fake(url, query, body, timeout)  # Alipay refunds...
        raise GatewayError("gateway unreachable: timeout")  # ...but its answer never arrives

    lost = gateway_module.AlipayGateway(app_id=APP_ID, private_key=fake.app_keys.private_key,
                                        alipay_public_key=fake.alipay_keys.public_key, transport=answer_lost)
    pending = ask(store, fake, "R1", 15000, gateway=lost)
    assert pending.code == 502 and pending.refund.status == REFUND_PENDING
    assert store.get("ORDER_P").refunded_cents == 15000
    assert ask(store, fake, "R2", 5000).code == 409  # the reserved cents are not free for another refund

    retry = ask(store, fake, "R1", 15000)
    assert retry.code == 200 and retry.refund.status == REFUND_DONE and retry.msg == "already refunded"
    assert {k: v["refund_amount"] for k, v in fake.trade("ORDER_P").extra["refunds"].items()} == {"R1": "150.00"}
    assert store.get("ORDER_P").refunded_cents == 15000


def test_definite_refusal_gives_the_cents_back(store, fake, paid_order):
    fake.answer_next = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.SELLER_BALANCE_NOT_ENOUGH", "sub_msg": "卖家余额不足"}
    refused = ask(store, fake, "R1", 5000)
    assert refused.code == 422 and "SELLER_BALANCE_NOT_ENOUGH" in refused.msg
    order = store.get("ORDER_P")
    assert order.refunded_cents == 0 and order.refunds == {}
    assert ask(store, fake, "R1", 5000).code == 200  # the same out_request_no can be tried again


def test_refusal_of_a_retry_never_releases_an_earlier_unknown_attempt(store, fake, paid_order):
    fake.fail_next = GatewayError("gateway unreachable: timeout")
    assert ask(store, fake, "R1", 5000).code == 502
    fake.answer_next = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_STATUS_ERROR", "sub_msg": "x"}
    assert ask(store, fake, "R1", 5000).code == 502
    assert store.get("ORDER_P").refunds["R1"].status == REFUND_PENDING
    assert store.get("ORDER_P").refunded_cents == 5000


@pytest.mark.parametrize("status", [UNPAID, 2])
def test_only_paid_orders_are_refunded(store, fake, status):
    store.create(Order("ORDER_U", "P1", "U1", "order", TOTAL, status=status))
    assert ask(store, fake, "R1", out_trade_no="ORDER_U").code == 409
    assert ask(store, fake, "R1", out_trade_no="ORDER_NONE").code == 404
    assert refund_calls(fake) == []


def race(store, fake, out_request_no, cents):
    """Make the next reservation's write wait while a whole other refund call runs first
    (between the first call's read of the order and its conditional write)."""
    real_add, raced = store.add_refund, []

    def add_refund(*args, **kwargs):
        if not raced:
            store.add_refund = real_add
            raced.append(ask(store, fake, out_request_no, cents))
        return real_add(*args, **kwargs)

    store.add_refund = add_refund
    return raced


def test_a_refund_racing_between_read_and_write_cannot_overdraw(store, fake, paid_order):
    raced = race(store, fake, "R_B", 15000)
    a = ask(store, fake, "R_A", 10000)
    assert raced[0].code == 200 and a.code == 409  # A re-read the order and saw only 4801 left
    order = store.get("ORDER_P")
    assert order.refunded_cents == 15000 and set(order.refunds) == {"R_B"}
    assert [c["out_request_no"] for c in refund_calls(fake)] == ["R_B"]


def test_the_same_refund_racing_itself_is_sent_once(store, fake, paid_order):
    raced = race(store, fake, "R_A", 10000)
    a = ask(store, fake, "R_A", 10000)
    assert (raced[0].code, a.code, a.msg) == (200, 200, "already refunded")
    assert store.get("ORDER_P").refunded_cents == 10000 and len(refund_calls(fake)) == 1


class AtomicWrites:
    """DynamoDB evaluates a condition and writes atomically; moto does not under threads, so its
    writes are serialised here. Reads stay free, so threads still interleave read -> write."""

    def __init__(self, client):
        self._client, self._lock = client, threading.Lock()

    def __getattr__(self, name):
        return getattr(self._client, name)

    def update_item(self, **kwargs):
        with self._lock:
            return self._client.update_item(**kwargs)


def test_concurrent_refunds_never_exceed_the_paid_amount(store, fake, paid_order):
    store._client = AtomicWrites(store._client)
    results, lock = [], threading.Lock()

    def one(i):
        result = ask(store, fake, f"R{i}", 6000)
        with lock:
            results.append(result.code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    order = store.get("ORDER_P")
    assert sorted(results) == [200, 200, 200, 409, 409, 409]
    assert order.refunded_cents == 18000 <= TOTAL and len(order.refunds) == 3
    assert len(refund_calls(fake)) == 3


def test_handler_validates_and_answers_with_the_envelope(store, fake, paid_order, monkeypatch):
    monkeypatch.setattr(gateway_module, "http_post", fake)
    reply = refund_handler({"outTradeNo": "ORDER_P", "outRequestNo": "R1", "refundAmount": 1230})
    assert reply["code"] == 200 and reply["data"]["refundedAmount"] == 1230 and reply["data"]["status"] == REFUND_DONE
    for bad in ({"outTradeNo": "ORDER_P"}, {"outTradeNo": "ORDER_P", "outRequestNo": "R 1"},
                {"outTradeNo": "ORDER_P", "outRequestNo": "R2", "refundAmount": "12.30"},
                {"outTradeNo": "ORDER_P", "outRequestNo": "R2", "refundAmount": 0}, []):
        reply = refund_handler(bad)
        assert reply["code"] == 400 and reply["msg"], bad
    assert store.get("ORDER_P").refunded_cents == 1230


def test_a_retry_that_succeeds_while_the_first_call_releases_is_recorded_again(store, fake, paid_order):
    """A's refund is refused (balance) and A releases the reservation; meanwhile B, the same
    outRequestNo, went through at Alipay. B must put the (certain) refund back in the ledger."""
    real_release, real_settle = store.release_refund, store.settle_refund
    results = {}

    def settle_after_the_release(*args):  # B: Alipay said yes; A's release lands first
        store.settle_refund = real_settle
        real_release(*released)
        return real_settle(*args)

    def release(*args):  # A: Alipay said no; B runs before A's release is written
        store.release_refund = real_release
        released.extend(args)
        store.settle_refund = settle_after_the_release
        results["B"] = ask(store, fake, "R1", 5000)
        return False, None

    released = []
    store.release_refund = release
    fake.answer_next = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.SELLER_BALANCE_NOT_ENOUGH", "sub_msg": "x"}
    results["A"] = ask(store, fake, "R1", 5000)
    assert (results["A"].code, results["B"].code) == (422, 200)
    order = store.get("ORDER_P")
    assert order.refunds["R1"].status == REFUND_DONE and order.refunded_cents == 5000
    assert {k: v["refund_amount"] for k, v in fake.trade("ORDER_P").extra["refunds"].items()} == {"R1": "50.00"}


# --- any sequence of refund calls, answers lost or refused along the way --------------------------

OPS = st.lists(st.tuples(st.sampled_from(["R1", "R2", "R3"]), st.integers(1, TOTAL),
                         st.sampled_from(["ok", "lost_before", "lost_after", "refused"])), max_size=6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_sequence_keeps_the_ledger_within_the_paid_amount_and_equal_to_alipays(store, fake, ops):
    out_trade_no = f"ORDER_H{len(fake.calls)}_{abs(hash(tuple(ops))) % 10**9}"
    store.create(Order(out_trade_no, "P1", "U1", "order", TOTAL, status=PAID, trade_no="1"))
    fake.add_trade(out_trade_no, "198.01", "TRADE_SUCCESS")

    def transport(mode):
        def call(url, query, body, timeout):
            if mode == "lost_before":
                raise GatewayError("gateway unreachable: timeout")
            if mode == "refused":
                fake.answer_next = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.SELLER_BALANCE_NOT_ENOUGH", "sub_msg": "x"}
            answer = fake(url, query, body, timeout)
            if mode == "lost_after":
                raise GatewayError("gateway unreachable: timeout")
            return answer
        return gateway_module.AlipayGateway(app_id=APP_ID, private_key=fake.app_keys.private_key,
                                            alipay_public_key=fake.alipay_keys.public_key, transport=call)

    for out_request_no, cents, mode in ops:
        refunds.refund(store, transport(mode), RefundRequest(out_trade_no, out_request_no, cents))
        order = store.get(out_trade_no)
        assert order.refunded_cents == sum(r.cents for r in order.refunds.values()) <= TOTAL

    for out_request_no, record in store.get(out_trade_no).refunds.items():  # retry what is pending
        if record.status == REFUND_PENDING:
            assert ask(store, fake, out_request_no, record.cents, out_trade_no=out_trade_no).code == 200
    order = store.get(out_trade_no)
    at_alipay = {k: v["refund_amount"] for k, v in fake.trade(out_trade_no).extra.get("refunds", {}).items()}
    assert at_alipay == {k: f"{r.cents // 100}.{r.cents % 100:02d}" for k, r in order.refunds.items()}
    assert all(r.status == REFUND_DONE for r in order.refunds.values())
