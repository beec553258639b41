"""functions/add_order on moto: direct invocation, cents in, never overwrite."""
import pytest

from functions.add_order.handler import handler as add_order

from tests.conftest import stored_items

GOOD = {"productId": "P1", "userId": "U1", "orderName": "subject", "totalAmount": 19801}


def test_generates_an_order_num_and_stores_an_unpaid_order(dynamodb, store):
    reply = add_order(GOOD)
    assert reply["code"] == 200 and reply["msg"] == "ok"
    stored = store.get(reply["data"]["orderNum"])
    assert stored.to_dict() == reply["data"]
    assert (stored.status, stored.total_cents, stored.play_type) == (0, 19801, 0)


def test_an_existing_order_num_is_409_and_never_overwritten(dynamodb, store):
    assert add_order(dict(GOOD, orderNum="ORDER_1_x"))["code"] == 200
    reply = add_order(dict(GOOD, orderNum="ORDER_1_x", totalAmount=1, userId="attacker"))
    assert reply["code"] == 409 and reply["data"] is None
    kept = store.get("ORDER_1_x")
    assert (kept.total_cents, kept.user_id) == (19801, "U1")


@pytest.mark.parametrize(
    "event, msg",
    [
        (dict(GOOD, totalAmount=198.01), "integer number of cents"),
        (dict(GOOD, totalAmount="19801"), "integer number of cents"),
        (dict(GOOD, totalAmount=0), "at least"),
        (dict(GOOD, totalAmount=True), "integer"),
        (dict(GOOD, orderNum="ORDER-1"), "orderNum"),
        (dict(GOOD, orderNum="x" * 65), "orderNum"),
        ({k: v for k, v in GOOD.items() if k != "orderName"}, "orderName is required"),
        ("not an order", "JSON object"),
    ],
)
def test_bad_events_are_400_and_write_nothing(dynamodb, event, msg):
    reply = add_order(event)
    assert reply["code"] == 400 and msg in reply["msg"]
    assert stored_items(dynamodb) == []
