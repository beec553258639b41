"""page.pay / wap.pay equal the official SDK's ``page_execute`` (app.pay: test_orderstr_sdk.py).

For the same inputs and the same Shanghai timestamp, every parameter, value and the signature
are equal: GET URLs compared as parsed query dicts, forms as what a browser would post.
"""
import json
from datetime import datetime, timezone

import pytest

from shared.alipay import orderstr
from shared.alipay.cert import CertSN

from tests import sdk_oracle as oracle

pytestmark = pytest.mark.oracle

APP_ID = "2021000000000001"
NOTIFY_URL = "https://pay.example.com/pay/notify"
RETURN_URL = "https://shop.example.com/pay/return?from=alipay&x=1"
GATEWAY = "https://openapi.alipay.com/gateway.do"
AT = datetime(2026, 11, 26, 2, 5, 9, tzinfo=timezone.utc)  # 10:05:09 in Shanghai
ORDERS = [
    orderstr.PayOrder("ORDER_1764122709000_abcdefghijkl", 19801, "数据恢复产品 A"),
    orderstr.PayOrder("ORDER_1", 1, 'A&B "quoted" <b>x</b> &notify=1 100%', body="é + / ? # & ;"),
]
CHARREF_ORDER = orderstr.PayOrder("ORDER_2", 100, "R&amp;D &lt;kit&gt;")
PRODUCT_CODES = {"alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY", "alipay.trade.wap.pay": "QUICK_WAP_WAY"}
BUILDERS = {
    "alipay.trade.page.pay": (orderstr.page_pay, orderstr.PAGE_PAY_PRODUCT_CODE),
    "alipay.trade.wap.pay": (orderstr.wap_pay, orderstr.WAP_PAY_PRODUCT_CODE),
}


@pytest.fixture(scope="module")
def sdk(app_keys):
    return oracle.sdk_client(APP_ID, app_keys.private_base64(pkcs8=False))  # its default gateway is GATEWAY


def ours(method, app_keys, order, cert_sn=None, return_url=RETURN_URL):
    build, _ = BUILDERS[method]
    return build(
        app_id=APP_ID, private_key=app_keys.private_key, notify_url=NOTIFY_URL, order=order,
        return_url=return_url, gateway=GATEWAY, at=AT, cert_sn=cert_sn,
    )


def theirs(sdk, method, order, http_method, udf=None, return_url=RETURN_URL):
    _, product_code = BUILDERS[method]
    return oracle.sdk_page_execute(
        sdk, AT, method, order.biz_content(product_code), http_method,
        notify_url=NOTIFY_URL, return_url=return_url, udf=udf,
    )


@pytest.mark.parametrize("method", sorted(BUILDERS))
@pytest.mark.parametrize("order", ORDERS, ids=["chinese", "html-and-url-specials"])
def test_get_url_equals_page_execute_get(sdk, app_keys, method, order):
    mine = oracle.query(ours(method, app_keys, order).url)
    official = oracle.query(theirs(sdk, method, order, "GET"))
    assert mine == official
    gateway, params = mine
    assert gateway == GATEWAY and params["method"] == method and params["timestamp"] == "2026-11-26 10:05:09"
    assert params["return_url"] == RETURN_URL and params["notify_url"] == NOTIFY_URL
    biz = json.loads(params["biz_content"])
    assert biz["product_code"] == PRODUCT_CODES[method]
    assert (biz["out_trade_no"], biz["total_amount"], biz["subject"]) == (
        order.out_trade_no, f"{order.total_cents // 100}.{order.total_cents % 100:02d}", order.subject
    )


@pytest.mark.parametrize("method", sorted(BUILDERS))
@pytest.mark.parametrize("order", ORDERS, ids=["chinese", "html-and-url-specials"])
def test_form_posts_what_page_execute_post_posts(sdk, app_keys, method, order):
    mine = oracle.form(ours(method, app_keys, order).form)
    official = oracle.form(theirs(sdk, method, order, "POST"))
    assert mine == official
    _, action, fields = mine
    assert set(fields) == {"biz_content"} and "sign" in action and "biz_content" not in action


@pytest.mark.parametrize("method", sorted(BUILDERS))
def test_without_return_url_as_the_sdk(sdk, app_keys, method):
    mine = oracle.query(ours(method, app_keys, ORDERS[0], return_url=None).url)
    assert mine == oracle.query(theirs(sdk, method, ORDERS[0], "GET", return_url=None))
    assert "return_url" not in mine[1]


@pytest.mark.parametrize("method", sorted(BUILDERS))
def test_certificate_mode_adds_the_sns_and_signs_them(sdk, app_keys, method):
    """The SDK has no certificate mode; given the SNs as extra parameters it signs the same set."""
    sns = CertSN("30c4934f7193fc58afd4f9f211298b7e", "45f09df911077b084aa1289c2bd6d335_0504e3bd3dd433792dfa0c7f73cb7fb8")
    mine = oracle.query(ours(method, app_keys, ORDERS[0], cert_sn=sns).url)
    official = oracle.query(theirs(sdk, method, ORDERS[0], "GET", udf=sns.params()))
    assert mine == official
    assert mine[1]["app_cert_sn"] == sns.app_cert_sn and mine[1]["alipay_root_cert_sn"] == sns.alipay_root_cert_sn
    plain = oracle.query(ours(method, app_keys, ORDERS[0]).url)[1]
    assert plain["sign"] != mine[1]["sign"]


def test_form_values_are_html_escaped(app_keys):
    page = ours("alipay.trade.page.pay", app_keys, ORDERS[1]).form
    assert "<b>x</b>" not in page and "&amp;notify_url=" in page


@pytest.mark.parametrize("method", sorted(BUILDERS))
def test_form_posts_exactly_what_was_signed_even_where_the_sdk_form_does_not(sdk, app_keys, method):
    """A subject holding a character reference: the SDK escapes only ``"``, so a browser decodes
    ``&amp;`` in its form to ``&`` and posts content other than what was signed. Ours posts the
    signed value: the same as the GET URL's, which equals the SDK's GET."""
    signed = oracle.query(theirs(sdk, method, CHARREF_ORDER, "GET"))[1]
    _, action, fields = oracle.form(ours(method, app_keys, CHARREF_ORDER).form)
    assert {**action, **fields} == signed
    _, _, sdk_fields = oracle.form(theirs(sdk, method, CHARREF_ORDER, "POST"))
    assert sdk_fields["biz_content"] != signed["biz_content"]
