"""Identifiers Alipay receives (out_trade_no, out_request_no) are exactly [A-Za-z0-9_] (and '-'):
no trailing newline slips through a ``$`` anchor, which also matches before a final ``\\n``."""
import pytest

from shared import status
from shared.domain import validation

ORDER = {"productId": "P1", "userId": "U1", "orderName": "subject", "totalAmount": 100}


@pytest.mark.parametrize("order_num", ["ORDER_1\n", "ORDER_1\r\n", "\nORDER_1"])
def test_add_order_refuses_an_order_num_with_a_newline(order_num):
    with pytest.raises(validation.InvalidInput, match="orderNum"):
        validation.add_order_request(dict(ORDER, orderNum=order_num))


@pytest.mark.parametrize("field, value", [("outTradeNo", "ORDER_1\n"), ("outRequestNo", "refund-1\n")])
def test_refund_refuses_identifiers_with_a_newline(field, value):
    event = {"outTradeNo": "ORDER_1", "outRequestNo": "refund-1", field: value}
    with pytest.raises(validation.InvalidInput, match=field):
        validation.refund_request(event)


def test_order_status_refuses_a_number_with_a_newline():
    class NoStore:
        def get(self, order_num):  # pragma: no cover - must not be reached
            raise AssertionError("looked up an invalid number")

    with pytest.raises(validation.InvalidInput, match="outTradeNo"):
        status.order_status(NoStore(), "ORDER_1\n", None)
