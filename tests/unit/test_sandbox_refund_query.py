"""The emulator's alipay.trade.fastpay.refund.query, through the official SDK unchanged (its own
request, its own signature check of the answer) and through our gateway client; and its knob that
loses answers after applying them."""
import json

import pytest

from shared.alipay.gateway import GatewayError

from tests.emulated_alipay import APP_ID, EmulatedAlipay


@pytest.fixture
def emu(app_keys, alipay_keys):
    return EmulatedAlipay(app_keys, alipay_keys)


def test_the_official_sdk_reads_the_emulators_answer(monkeypatch, emu, app_keys, alipay_keys):
    pytest.importorskip("alipay.aop.api")
    import alipay.aop.api.DefaultAlipayClient as sdk_client_module  # noqa: PLC0415
    from alipay.aop.api.domain.AlipayTradeFastpayRefundQueryModel import AlipayTradeFastpayRefundQueryModel  # noqa: PLC0415
    from alipay.aop.api.request.AlipayTradeFastpayRefundQueryRequest import AlipayTradeFastpayRefundQueryRequest  # noqa: PLC0415
    from alipay.aop.api.util.WebUtils import url_encode  # noqa: PLC0415

    from tests.sdk_oracle import sdk_client  # noqa: PLC0415

    emu.add_trade("O1", "10.00", "TRADE_SUCCESS")
    emu.gateway().trade_refund("O1", 300, "R1")

    def do_post(url, query_string=None, headers=None, params=None, charset="utf-8", timeout=15):
        status, _, body = emu.sandbox.gateway(query_string.encode("ascii"), url_encode(params, charset).encode(charset))
        assert status == 200
        return body

    monkeypatch.setattr(sdk_client_module, "do_post", do_post)
    client = sdk_client(APP_ID, app_keys.private_base64(pkcs8=False), alipay_keys.public_base64())

    def ask(request_no):
        model = AlipayTradeFastpayRefundQueryModel()
        model.out_trade_no, model.out_request_no, model.query_options = "O1", request_no, ["gmt_refund_pay"]
        return json.loads(client.execute(AlipayTradeFastpayRefundQueryRequest(biz_model=model)))  # verifies the sign

    done = ask("R1")
    assert (done["code"], done["out_request_no"], done["refund_amount"], done["refund_status"]) == ("10000", "R1", "3.00", "REFUND_SUCCESS")
    assert done["gmt_refund_pay"] and done["total_amount"] == "10.00"
    missing = ask("R9")  # never refunded: 10000 without refund data, as Alipay documents
    assert missing["code"] == "10000" and "refund_amount" not in missing and "refund_status" not in missing


def test_our_client_reads_success_absence_and_the_older_answer(emu):
    emu.add_trade("O1", "10.00", "TRADE_SUCCESS")
    gateway = emu.gateway()
    gateway.trade_refund("O1", 300, "R1")
    done = gateway.trade_fastpay_refund_query("O1", "R1")
    assert done.refunded and not done.not_found and done.refund_cents == 300 and done.gmt_refund_pay
    absent = gateway.trade_fastpay_refund_query("O1", "R9")
    assert absent.not_found and not absent.refunded
    emu.sandbox.refund_status_field = False
    older = gateway.trade_fastpay_refund_query("O1", "R1")
    assert older.refund_status is None and older.refunded  # the data alone: refunded


def test_lost_answers_are_applied_first(emu):
    emu.add_trade("O1", "10.00", "TRADE_SUCCESS")
    emu.sandbox.lose_answers(2)
    for request_no in ("R1", "R2"):
        with pytest.raises(GatewayError):
            emu.gateway().trade_refund("O1", 100, request_no)
    assert sorted(emu.trade("O1").extra["refunds"]) == ["R1", "R2"] and emu.sandbox.answers_to_lose() == 0
    assert emu.gateway().trade_refund("O1", 100, "R1").fund_change is False  # the repeat is answered again
    with pytest.raises(ValueError):
        emu.sandbox.lose_answers(-1)
