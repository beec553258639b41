from shared.domain.orders import CLOSED, PAID, UNPAID, Order, Outcome, judge, new_out_trade_no

ORDER = Order("ORDER_1_a", "P", "U", "n", 100)


def with_status(status):
    return Order(**{**ORDER.__dict__, "status": status})


def test_failed_conditions_are_judged_from_the_old_item():
    assert judge(None, PAID, 100) is Outcome.NOT_FOUND
    assert judge(with_status(UNPAID), PAID, 99) is Outcome.MISMATCH
    assert judge(with_status(PAID), PAID, 100) is Outcome.ALREADY
    assert judge(with_status(CLOSED), CLOSED, 100) is Outcome.ALREADY
    assert judge(with_status(PAID), CLOSED, 100) is Outcome.KEPT
    assert judge(with_status(PAID), CLOSED, None) is Outcome.KEPT


def test_only_handled_outcomes_stop_alipay_retrying():
    assert {o for o in Outcome if o.handled} == {Outcome.APPLIED, Outcome.ALREADY, Outcome.KEPT}


def test_out_trade_no_shape_and_uniqueness():
    numbers = {new_out_trade_no() for _ in range(2000)}
    assert len(numbers) == 2000
    for number in numbers:
        prefix, ms, suffix = number.split("_")
        assert prefix == "ORDER" and ms.isdigit() and len(ms) == 13 and len(suffix) == 12
        assert len(number) <= 64


def test_order_round_trips_through_its_stored_form():
    paid = Order("ORDER_1_a", "P", "U", "n", 100, status=PAID, pay_date="2026-01-01T00:00:00+08:00", trade_no="T", body="b")
    assert Order.from_dict(paid.to_dict()) == paid
    assert "payDate" not in ORDER.to_dict() and ORDER.to_dict()["totalAmount"] == 100
