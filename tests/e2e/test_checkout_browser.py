"""The checkout of ``make run`` clicked through in a real headless Chromium (tests/e2e/browser.py).

checkout → page channel → the emulator's cashier → pay → the return page shows paid → the order
page's timeline shows the notify (then a refund); the same with cancel and with close; precreate's
QR code decoded from the screenshot and from the image bytes, then paid on the scan page; app pay
through the mobile SDK's button. Every page is screenshotted under the test's temporary folder.
"""
from __future__ import annotations

import base64
import io
import re
from urllib.parse import quote

import pytest

from tests.e2e import browser
from tests.e2e.browser import checkout_stack  # noqa: F401 - the fixture
from tests.e2e.test_local_stack import order

TEA = "PROD_TEA"  # its name carries <&> and quotes: they must show as text, never as markup


@pytest.fixture(scope="module")
def stack(checkout_stack):  # noqa: F811 - this module's stack prices from the tests' catalog
    return checkout_stack


@pytest.fixture
def pages(tmp_path):
    driver = browser.chromium(tmp_path / "profile")
    (tmp_path / "screens").mkdir()
    yield browser.Pages(driver, tmp_path / "screens")
    driver.quit()
    browser.cleanup(tmp_path / "profile")
    print(f"screenshots: {tmp_path / 'screens'}")


def checkout(pages, stack, channel: str, product: str = TEA) -> str:
    """Pick ``product`` and ``channel`` on GET / and pay; returns the new order's number."""
    from selenium.webdriver.common.by import By

    driver = pages.driver
    driver.get(stack.url + "/")
    assert "Checkout" in driver.title and 'Tea <&> "quoted"' in pages.body()
    driver.find_element(By.CSS_SELECTOR, f'input[name=productId][value="{product}"]').click()
    driver.find_element(By.CSS_SELECTOR, f'input[name=channel][value="{channel}"]').click()
    pages.shot(f"checkout-{channel}")
    pages.click("pay")
    out_trade_no = pages.text("order-num")
    assert re.fullmatch(r"ORDER_\d{13}_[a-z0-9]{12}", out_trade_no)
    assert driver.current_url == f"{stack.url}/checkout/orders/{out_trade_no}"
    assert "unpaid" in pages.text("order-status") and "order created (POST /pay)" in pages.text("timeline")
    pages.shot(f"order-{channel}-unpaid")
    return out_trade_no


def open_cashier(pages, out_trade_no: str) -> None:
    pages.click("open-cashier")
    assert pages.text("out-trade-no") == out_trade_no and pages.text("amount") == "¥12.50"
    assert pages.text("trade-status") == "WAIT_BUYER_PAY"
    pages.shot("cashier")


def test_page_channel_pay_returns_paid_and_the_timeline_shows_the_notify_then_a_refund(pages, stack):
    out_trade_no = checkout(pages, stack, "page")
    order_page = pages.driver.current_url
    open_cashier(pages, out_trade_no)
    pages.click("cashier-pay")
    pages.wait_for_url(f"{stack.url}/pay/return?")  # the receipt's refresh: Alipay's signed sync return
    pages.until(lambda text: "支付成功" in text and out_trade_no in text)  # the stored state, once notified
    pages.shot("return-paid")

    pages.driver.get(order_page)
    timeline = pages.until(lambda text: "notify TRADE_SUCCESS · attempt 1 → answered success (HTTP 200)" in text)
    assert "paid" in pages.text("order-status") and "cashier: buyer chose pay" in timeline
    assert order(stack, out_trade_no)[1]["data"]["status"] == 1
    assert stack.log_lines(f" {out_trade_no} ¥12.50 pay_notify  notify {out_trade_no} -> success (TRADE_SUCCESS: applied)")
    pages.shot("order-paid")

    amount = pages.driver.find_element("id", "refund-amount")
    amount.clear()
    amount.send_keys("2.50")
    pages.click("refund-button")  # the refund function, as `make invoke FUNCTION=refund` calls it
    assert re.search(r"refund R\w+: 200", pages.text("flash")), pages.text("flash")
    timeline = pages.text("timeline")
    assert "requested ¥2.50" in timeline and "alipay.trade.refund → Success" in timeline
    pages.until(lambda text: "refund_fee 2.50 · attempt 1 → answered success" in text)
    timeline = pages.until(lambda text: "OrderRefunded ¥2.50 published" in text)  # GET /local/events
    assert timeline.count("OrderPaid published") == 1
    assert pages.text("refund-amount") == "" and "¥2.50" in pages.body()
    pages.shot("order-refunded")


@pytest.mark.parametrize("choice, status, notified", [
    ("cancel", "unpaid", None),  # the buyer leaves: the trade stays open, nothing is notified
    ("close", "closed", "notify TRADE_CLOSED · attempt 1 → answered success (HTTP 200)"),
])
def test_page_channel_cancel_or_close_at_the_cashier(pages, stack, choice, status, notified):
    out_trade_no = checkout(pages, stack, "page")
    open_cashier(pages, out_trade_no)
    pages.click(f"cashier-{choice}")
    assert "sign=" not in pages.driver.current_url and out_trade_no in pages.body()
    pages.shot(f"cashier-{choice}")
    pages.click("back-to-shop")  # to the shop's home: the order is among the recent ones
    assert pages.driver.current_url == f"{stack.url}/"
    pages.driver.find_element("link text", out_trade_no).click()
    pages.until(lambda text: "Timeline" in text and out_trade_no in text, refresh=False)
    assert pages.driver.current_url == f"{stack.url}/checkout/orders/{out_trade_no}"
    if notified:
        pages.until(lambda text: notified in text)
    timeline = pages.text("timeline")
    assert f"cashier: buyer chose {choice}" in timeline and status in pages.text("order-status")
    assert ("notify" in timeline) == bool(notified)
    assert order(stack, out_trade_no)[1]["data"]["status"] == {"unpaid": 0, "closed": 2}[status]
    pages.shot(f"order-{choice}")


def test_precreate_shows_a_qr_code_that_decodes_and_the_scan_page_pays_it(pages, stack):
    import zxingcpp
    from PIL import Image

    out_trade_no = checkout(pages, stack, "precreate")
    image = pages.driver.find_element("id", "qr")
    shown = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.screenshot_as_png)))  # what the screen shows
    data_uri = image.get_attribute("src")
    assert data_uri.startswith("data:image/png;base64,")
    served = zxingcpp.read_barcodes(Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1]))))
    assert [code.text for code in shown] == [code.text for code in served] == [pages.text("qr-text")]
    assert shown[0].format == zxingcpp.BarcodeFormat.QRCode and shown[0].text.startswith("https://qr.alipay.com/")

    pages.driver.get(f"{stack.url}/sandbox/scan?qr_code={quote(shown[0].text)}")  # the buyer's phone reads it
    assert pages.text("out-trade-no") == out_trade_no
    pages.shot("scan")
    pages.click("scan-success")
    assert "付款成功" in pages.body()
    pages.shot("scan-paid")
    pages.driver.get(f"{stack.url}/checkout/orders/{out_trade_no}")
    pages.until(lambda text: "notify TRADE_SUCCESS · attempt 1 → answered success" in text and "paid 已支付" in text)
    pages.shot("order-precreate-paid")


def test_app_channel_shows_the_order_str_and_the_sdk_button_pays_it(pages, stack):
    out_trade_no = checkout(pages, stack, "app")
    order_str = pages.driver.find_element("id", "order-str").get_attribute("value")
    assert "method=alipay.trade.app.pay" in order_str and "sign=" in order_str
    pages.click("sdk-success")
    assert "resultStatus 9000" in pages.text("flash")
    pages.until(lambda text: "notify TRADE_SUCCESS · attempt 1 → answered success" in text and "paid 已支付" in text)
    pages.shot("order-app-paid")
