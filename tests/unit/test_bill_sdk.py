"""``alipay.data.dataservice.bill.downloadurl.query``: our request equals the official SDK's
``execute`` byte for byte, and the SDK, unchanged, gets a bill URL from the emulator and the
zip behind it parses (the emulator's fidelity, held by Alipay's own client)."""
import datetime as real_datetime
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

pytest.importorskip("alipay.aop.api")

import alipay.aop.api.DefaultAlipayClient as sdk_client_module  # noqa: E402
from alipay.aop.api.domain.AlipayDataDataserviceBillDownloadurlQueryModel import (  # noqa: E402
    AlipayDataDataserviceBillDownloadurlQueryModel,
)
from alipay.aop.api.request.AlipayDataDataserviceBillDownloadurlQueryRequest import (  # noqa: E402
    AlipayDataDataserviceBillDownloadurlQueryRequest,
)

from local import alipay, bills  # noqa: E402
from local.ledger import TRADE_SUCCESS, Trade  # noqa: E402
from local.sandbox import Sandbox  # noqa: E402
from shared.alipay import bill  # noqa: E402
from shared.alipay.gateway import BILL_DOWNLOADURL_QUERY, AlipayError, AlipayGateway  # noqa: E402
from shared.domain import clock  # noqa: E402

from tests.sdk_oracle import frozen_sdk_clock, sdk_client  # noqa: E402

pytestmark = pytest.mark.oracle

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
AT = real_datetime.datetime(2026, 12, 2, 10, 30, 0, tzinfo=clock.SHANGHAI)


def sdk_request(day):
    model = AlipayDataDataserviceBillDownloadurlQueryModel()
    model.bill_type, model.bill_date = "trade", day
    return AlipayDataDataserviceBillDownloadurlQueryRequest(biz_model=model)


def test_request_bytes_equal_the_official_sdk(monkeypatch, app_keys, alipay_keys):
    payload = {"code": "10000", "msg": "Success", "bill_download_url": "http://dwbillcenter.alipay.com/downloadBillFile.resource?x=1"}
    body = alipay.response_body(BILL_DOWNLOADURL_QUERY, payload, alipay_keys.private_key)
    sent = []

    def do_post(url, query_string=None, headers=None, params=None, charset="utf-8", timeout=15):
        from alipay.aop.api.util.WebUtils import url_encode

        sent.append((query_string, url_encode(params, charset).encode(charset)))
        return body

    monkeypatch.setattr(sdk_client_module, "do_post", do_post)
    with frozen_sdk_clock(AT):
        sdk_content = sdk_client(APP_ID, app_keys.private_base64(pkcs8=False), alipay_keys.public_base64()).execute(sdk_request("2026-12-01"))
    recorded = []
    gateway = AlipayGateway(app_id=APP_ID, private_key=app_keys.private_key, alipay_public_key=alipay_keys.public_key,
                            transport=lambda url, query, form, timeout: recorded.append((query, form)) or body)
    assert gateway.data_dataservice_bill_downloadurl_query("2026-12-01", at=AT) == payload["bill_download_url"]
    (sdk_query, sdk_body), = sent
    (query, form), = recorded
    assert sorted(query.split("&")) == sorted(sdk_query.split("&")) and form == sdk_body
    assert json.loads(sdk_content) == payload


def test_the_official_sdk_gets_a_bill_from_the_emulator_unchanged(monkeypatch, app_keys, alipay_keys):
    sandbox = Sandbox(app_id=APP_ID, seller_id=SELLER_ID, app_public_key=app_keys.public_key, alipay_private_key=alipay_keys.private_key)
    paid = clock.alipay_timestamp()
    sandbox.ledger.add(Trade("ORDER_1", sandbox.ledger.new_trade_no(), APP_ID, SELLER_ID, "19.80", "数据恢复", "QUICK_MSECURITY_PAY",
                             None, status=TRADE_SUCCESS, gmt_payment=paid))

    def do_post(url, query_string=None, headers=None, params=None, charset="utf-8", timeout=15):
        from alipay.aop.api.util.WebUtils import url_encode

        status, _, answer = sandbox.gateway(query_string.encode("ascii"), url_encode(params, charset).encode(charset))
        assert status == 200
        return answer

    monkeypatch.setattr(sdk_client_module, "do_post", do_post)
    client = sdk_client(APP_ID, app_keys.private_base64(pkcs8=False), alipay_keys.public_base64())
    answer = json.loads(client.execute(sdk_request(paid[:10])))  # the SDK verified the emulator's signature
    parts = urlsplit(answer["bill_download_url"])
    status, content_type, data = bills.route(sandbox, "GET", parts.path[len("/sandbox"):], dict(parse_qsl(parts.query)), None)
    assert (status, content_type) == (200, "application/zip")
    [line] = bill.parse_zip(data).lines
    assert (line.out_trade_no, line.order_cents, line.finished_at) == ("ORDER_1", 1980, paid)

    later = (clock.now() + real_datetime.timedelta(days=2)).date().isoformat()
    assert json.loads(client.execute(sdk_request(later)))["sub_code"] == "isp.bill_not_exist"  # signed, verified by the SDK
    gateway = AlipayGateway(app_id=APP_ID, private_key=app_keys.private_key, alipay_public_key=alipay_keys.public_key,
                            transport=lambda url, query, form, timeout: sandbox.gateway(query.encode(), form)[2])
    with pytest.raises(AlipayError) as refused:
        gateway.data_dataservice_bill_downloadurl_query(later)
    assert refused.value.sub_code == "isp.bill_not_exist"
