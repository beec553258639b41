"""The checkout's pages over plain HTTP (the browser tests click the same pages): hostile text is
shown as text, bad forms are refused with a clear page and nothing paid, unknown orders 404."""
from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from local import checkout
from shared.domain.catalog import CatalogError
from tests.e2e.browser import checkout_stack  # noqa: F401 - the fixture
from tests.e2e.conftest import http

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def stack(checkout_stack):  # noqa: F811 - this module's stack prices from the tests' catalog
    return checkout_stack


def buy(stack, **fields) -> tuple:
    return http("POST", f"{stack.url}/checkout", urlencode({"productId": "PROD_TEA", "channel": "page", "userId": "USER_1", **fields}).encode(), FORM, parse=False)


def test_hostile_text_is_escaped_on_every_page(stack):
    hostile = '<script>alert(1)</script>"\'&'
    status, page = buy(stack, userId=hostile)  # urllib follows the 303 to the order page
    assert status == 200 and "Timeline" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;" in page
    assert 'Tea &lt;&amp;&gt; &quot;quoted&quot;' in page
    home = http("GET", f"{stack.url}/", parse=False)[1]
    assert "<script>" not in home and "Tea &lt;&amp;&gt; &quot;quoted&quot;" in home
    assert "prices from PRODUCT_CATALOG" in home  # the catalog pay prices from


@pytest.mark.parametrize("fields, status, says", [
    ({"productId": "NOPE"}, 400, "Pick a product from the list"),
    ({"channel": "carrier-pigeon"}, 400, "channel must be one of"),  # pay's own 400, shown
    ({"userId": ""}, 400, "userId"),
])
def test_a_refused_checkout_shows_why_and_creates_nothing_payable(stack, fields, status, says):
    got, page = buy(stack, **fields)
    assert got == status and says in page, page[:500]
    assert "open-cashier" not in page


def test_malformed_forms_and_unknown_orders(stack):
    assert http("POST", f"{stack.url}/checkout", b"productId=PROD_TEA&productId=PROD_1", FORM, parse=False)[0] == 400
    assert http("POST", f"{stack.url}/checkout", b"\xff" * 10, FORM, parse=False)[0] == 400
    assert http("GET", f"{stack.url}/checkout/orders/ORDER_1796171165717_aaaaaaaaaaaa", parse=False)[0] == 404
    assert http("GET", f"{stack.url}/checkout/orders/%3Cscript%3E", parse=False)[0] == 404
    assert http("POST", f"{stack.url}/sandbox/cashier", b"action=pay&out_trade_no=x&token=y", FORM, parse=False)[0] == 404


def test_a_refund_of_a_bad_amount_is_not_sent(stack):
    status, page = buy(stack)
    out_trade_no = page.split('id="order-num">', 1)[1].split("<", 1)[0]
    status, page = http("POST", f"{stack.url}/checkout/orders/{out_trade_no}/refund", b"amount=1.001", FORM, parse=False)
    assert status == 200 and "refund not sent" in page and "requested" not in page


def test_products_come_from_the_catalog_pay_prices_from(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"products": {"P1": {"price": "9.90", "name": "书 Book"}, "P2": {"price": "1"}}}), encoding="utf-8")
    offered, priced = checkout.products({"PRODUCT_CATALOG": str(path)})
    assert priced and [(p.product_id, p.name, p.price) for p in offered] == [("P1", "书 Book", "9.90"), ("P2", "P2", "1.00")]
    path.write_text(json.dumps({"products": {"P1": {"price": "0.001"}}}), encoding="utf-8")
    with pytest.raises(CatalogError):
        checkout.products({"PRODUCT_CATALOG": str(path)})
    assert checkout.products({})[1] is False


def test_a_channel_with_its_own_inputs_shows_them_once_pay_lists_it(monkeypatch):
    """jsapi and barcode slot in: their inputs appear when validation.CHANNELS names them, and go to pay."""
    from shared.domain import validation

    tea = checkout.Product("PROD_TEA", "Tea", "12.50")
    monkeypatch.setattr(validation, "CHANNELS", ("app", "page"))
    assert checkout.channel_inputs() == ""
    monkeypatch.setattr(validation, "CHANNELS", ("app", "page", "jsapi", "barcode"))
    inputs = checkout.channel_inputs()
    assert 'name="buyerId"' in inputs and 'name="authCode"' in inputs
    request = checkout.pay_request({"channel": "barcode", "userId": "U", "authCode": "284567891234567890", "buyerId": "x"}, tea)
    assert request == {"productId": "PROD_TEA", "userId": "U", "orderName": "Tea", "total_amount": "12.50",
                       "channel": "barcode", "authCode": "284567891234567890"}
    assert "authCode" not in checkout.pay_request({"channel": "page", "authCode": "1"}, tea)


def test_a_broken_catalog_is_a_500_page_that_names_it(tmp_path, monkeypatch):
    path = tmp_path / "catalog.json"
    path.write_text('{"products": {"P1": {"price": "-1"}}}', encoding="utf-8")
    monkeypatch.setenv("PRODUCT_CATALOG", str(path))
    shop = checkout.Shop("http://127.0.0.1:9", lambda: None)
    status, content_type, body, _ = shop.handle("GET", "/", "", b"")
    assert (status, content_type) == (500, "text/html; charset=utf-8") and b"CatalogError" in body
    assert shop.handle("GET", "/not-the-checkout", "", b"") is None
