"""The emulator's alipay.trade.close and alipay.trade.refund, through our gateway client."""
import pytest

from local.sandbox import GatewayError, GatewayRequest, trade_refund
from shared.alipay.gateway import AlipayError

from tests.emulated_alipay import EmulatedAlipay


@pytest.fixture
def emu(app_keys, alipay_keys):
    return EmulatedAlipay(app_keys, alipay_keys)


def sub_code(call):
    with pytest.raises(AlipayError) as caught:
        call()
    return caught.value.sub_code


def test_close(emu):
    emu.add_trade("O1", "10.00")
    emu.add_trade("O2", "10.00", "TRADE_SUCCESS")
    assert emu.gateway().trade_close("O1").trade_no == emu.trade("O1").trade_no
    assert emu.trade("O1").status == "TRADE_CLOSED" and emu.trade("O1").gmt_close
    assert sub_code(lambda: emu.gateway().trade_close("O1")) == "ACQ.TRADE_STATUS_ERROR"  # already closed
    assert sub_code(lambda: emu.gateway().trade_close("O2")) == "ACQ.TRADE_STATUS_ERROR"  # paid
    assert sub_code(lambda: emu.gateway().trade_close("NONE")) == "ACQ.TRADE_NOT_EXIST"


def test_refund_rules(emu):
    emu.add_trade("O1", "10.00", "TRADE_SUCCESS")
    emu.add_trade("O2", "10.00")
    gateway = emu.gateway()
    first = gateway.trade_refund("O1", 300, "R1")
    assert (first.fund_change, first.refund_fee_cents) == (True, 300)
    repeat = gateway.trade_refund("O1", 300, "R1")
    assert (repeat.fund_change, repeat.refund_fee_cents, repeat.gmt_refund_pay) == (False, 300, first.gmt_refund_pay)
    assert sub_code(lambda: gateway.trade_refund("O1", 400, "R1")) == "ACQ.DISCORDANT_REPEAT_REQUEST"
    assert sub_code(lambda: gateway.trade_refund("O1", 701, "R2")) == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert sub_code(lambda: gateway.trade_refund("O2", 100, "R1")) == "ACQ.TRADE_STATUS_ERROR"  # unpaid
    assert sub_code(lambda: gateway.trade_refund("NONE", 100, "R1")) == "ACQ.TRADE_NOT_EXIST"
    rest = gateway.trade_refund("O1", 700, "R2")
    assert rest.refund_fee_cents == 1000 and emu.trade("O1").status == "TRADE_CLOSED"
    assert gateway.trade_refund("O1", 700, "R2").fund_change is False  # a repeat after the trade closed
    assert sub_code(lambda: gateway.trade_refund("O1", 1, "R3")) == "ACQ.TRADE_STATUS_ERROR"
    assert sorted(emu.trade("O1").extra["refunds"]) == ["R1", "R2"]


@pytest.mark.parametrize(
    "amount, code",
    [("1.001", "isv.invalid-refund-amount"), (3, "isv.invalid-refund-amount"), ("", "isv.invalid-refund-amount"),
     ("0.00", "ACQ.REASON_TRADE_REFUND_FEE_ERR"), ("100000000.01", "ACQ.REASON_TRADE_REFUND_FEE_ERR")],
)
def test_refund_amount_must_be_a_valid_amount(emu, amount, code):
    """The same amount rules as pay's total_amount, with refund's own error codes; nothing moves."""
    emu.add_trade("O1", "10.00", "TRADE_SUCCESS")
    request = GatewayRequest({"method": "alipay.trade.refund"}, {"out_trade_no": "O1", "refund_amount": amount, "out_request_no": "R1"})
    with pytest.raises(GatewayError) as caught:
        trade_refund(emu.sandbox, request)
    assert caught.value.sub_code == code and "refunds" not in emu.trade("O1").extra
