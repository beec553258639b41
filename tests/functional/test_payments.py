"""shared.payments on moto: an out_trade_no collision draws a new number, never overwrites."""
from shared import payments
from shared.domain.orders import Order
from shared.domain.validation import NewOrder

NEW = NewOrder("P1", "U1", "subject", 100)


def test_a_colliding_out_trade_no_is_redrawn_and_the_existing_order_kept(store, monkeypatch):
    store.create(Order("ORDER_1_taken", "P0", "someone", "theirs", 5))
    numbers = iter(["ORDER_1_taken", "ORDER_2_free"])
    monkeypatch.setattr(payments, "new_out_trade_no", lambda at=None: next(numbers))
    order = payments.add_order(store, NEW)
    assert order.order_num == "ORDER_2_free"
    assert store.get("ORDER_1_taken").user_id == "someone"


def test_endless_collisions_give_up_loudly(store, monkeypatch):
    store.create(Order("ORDER_1_taken", "P0", "someone", "theirs", 5))
    monkeypatch.setattr(payments, "new_out_trade_no", lambda at=None: "ORDER_1_taken")
    try:
        payments.add_order(store, NEW)
    except RuntimeError as exc:
        assert "no free out_trade_no" in str(exc)
    else:
        raise AssertionError("a collision must never be silent")
