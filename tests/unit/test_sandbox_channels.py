"""The emulator accepts page / wap / precreate and certificate-mode requests, built by our own
builders and gateway client, and answers them as Alipay would."""
from __future__ import annotations

import json
import re
from html import unescape
from urllib.parse import urlencode, urlsplit

import pytest

from local import cashier, certs
from local.ledger import TRADE_CLOSED, TRADE_SUCCESS, WAIT_BUYER_PAY
from local.sandbox import CertMode, Sandbox, scan
from shared.alipay import cert, orderstr, sync_return
from shared.alipay.gateway import AlipayError, AlipayGateway

from tests import sdk_oracle
from tests.unit.test_sandbox import APP_ID, NOTIFY_URL, SELLER_ID, RecordingNotifier

RETURN_URL = "http://127.0.0.1:9/pay/return?shop=1"
ORDER = orderstr.PayOrder("ORDER_1795000000000_web", 19801, "数据恢复产品 A")


def emulator(app_keys, alipay_keys, certs_: CertMode | None = None) -> Sandbox:
    return Sandbox(
        app_id=APP_ID, seller_id=SELLER_ID, app_public_key=app_keys.public_key,
        alipay_private_key=alipay_keys.private_key, notifier=RecordingNotifier(), certs=certs_,
    )


def browser_request(app_keys, build=orderstr.page_pay, order=ORDER, cert_sn=None, return_url=RETURN_URL):
    return build(app_id=APP_ID, private_key=app_keys.private_key, notify_url=NOTIFY_URL, order=order,
                 return_url=return_url, gateway="http://127.0.0.1:9/sandbox/gateway.do", cert_sn=cert_sn)


def via_get(sandbox, page):
    return sandbox.gateway(urlsplit(page.url).query.encode(), b"")


def via_form(sandbox, page):
    _, action, fields = sdk_oracle.form(page.form)
    return sandbox.gateway(orderstr.encode(action).encode(), orderstr.encode(fields).encode())


def cashier_choice(html_page: bytes, action: str) -> bytes:
    """The form body the cashier page posts when the buyer presses ``action``'s button."""
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html_page.decode()))
    assert set(hidden) == {"out_trade_no", "token"} and f'value="{action}"' in html_page.decode()
    return urlencode({**{k: unescape(v) for k, v in hidden.items()}, "action": action}).encode()


def redirect_query(html_page: bytes) -> bytes:
    url = unescape(re.search(r'content="0;url=([^"]+)"', html_page.decode()).group(1))
    assert url.startswith(RETURN_URL + "&")  # Alipay appends its signed parameters
    return url[len(RETURN_URL) + 1:].encode()


@pytest.mark.parametrize("build, method", [(orderstr.page_pay, "alipay.trade.page.pay"), (orderstr.wap_pay, "alipay.trade.wap.pay")])
@pytest.mark.parametrize("send", [via_get, via_form], ids=["GET", "POST-form"])
def test_browser_pay_is_accepted_paid_notified_and_returned_signed(app_keys, alipay_keys, build, method, send):
    sandbox = emulator(app_keys, alipay_keys)
    status, content_type, body = send(sandbox, browser_request(app_keys, build))
    assert (status, content_type) == (200, "text/html; charset=utf-8"), body[:300]
    assert sandbox.ledger.find(ORDER.out_trade_no).status == WAIT_BUYER_PAY and sandbox.notifier.sent == []
    status, _, body = cashier.act(sandbox, cashier_choice(body, "pay"))  # the buyer presses 确认付款
    assert status == 200, body[:300]
    back = redirect_query(body)
    verified = sync_return.verify_return(back, public_key=alipay_keys.public_key, app_id=APP_ID)
    assert (verified.out_trade_no, verified.total_cents) == (ORDER.out_trade_no, 19801)
    assert f"method={method}.return".encode() in back
    assert sandbox.ledger.find(ORDER.out_trade_no).status == TRADE_SUCCESS
    (out_trade_no, url, notify, _), = sandbox.notifier.sent
    assert (out_trade_no, url, notify["trade_status"]) == (ORDER.out_trade_no, NOTIFY_URL, "TRADE_SUCCESS")


def test_the_cashier_shows_the_order_escaped_and_pays_nothing_until_asked(app_keys, alipay_keys):
    sandbox = emulator(app_keys, alipay_keys)
    order = orderstr.PayOrder("ORDER_1795000000000_esc", 1250, 'Tea <script>alert("x")</script>')
    body = via_get(sandbox, browser_request(app_keys, order=order))[2].decode()
    assert "<script>" not in body and "Tea &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert "¥12.50" in body and order.out_trade_no in body
    reopened = via_get(sandbox, browser_request(app_keys, order=order))[2]  # the buyer reloads the cashier
    assert sandbox.ledger.find(order.out_trade_no).status == WAIT_BUYER_PAY and sandbox.notifier.sent == []
    assert cashier.act(sandbox, cashier_choice(body.encode(), "pay"))[0] == 404  # the first page's token is spent
    assert cashier.act(sandbox, cashier_choice(reopened, "pay"))[0] == 200


def test_cancel_leaves_the_trade_open_without_notify_or_signed_return(app_keys, alipay_keys):
    sandbox = emulator(app_keys, alipay_keys)
    page = via_get(sandbox, browser_request(app_keys, orderstr.wap_pay))[2]
    status, _, body = cashier.act(sandbox, cashier_choice(page, "cancel"))
    assert status == 200 and "sign=" not in body.decode() and 'href="http://127.0.0.1:9/"' in body.decode()
    assert sandbox.ledger.find(ORDER.out_trade_no).status == WAIT_BUYER_PAY and sandbox.notifier.sent == []
    events = [e["what"] for e in sandbox.ledger.snapshot(ORDER.out_trade_no)["extra"]["events"]]
    assert events == ["cashier opened (alipay.trade.wap.pay)", "cashier: buyer chose cancel"]
    assert cashier.act(sandbox, cashier_choice(page, "pay"))[0] == 200  # the buyer came back: still payable


def test_close_closes_the_trade_notifies_it_and_refuses_a_later_choice(app_keys, alipay_keys):
    sandbox = emulator(app_keys, alipay_keys)
    page = via_get(sandbox, browser_request(app_keys))[2]
    status, _, body = cashier.act(sandbox, cashier_choice(page, "close"))
    assert status == 200 and "sign=" not in body.decode()
    assert sandbox.ledger.find(ORDER.out_trade_no).status == TRADE_CLOSED
    assert [n[2]["trade_status"] for n in sandbox.notifier.sent] == ["TRADE_CLOSED"]
    assert cashier.act(sandbox, cashier_choice(page, "pay"))[0] == 409
    assert json.loads(via_get(sandbox, browser_request(app_keys))[2])["alipay_trade_page_pay_response"]["sub_code"] == "ACQ.TRADE_HAS_CLOSE"


@pytest.mark.parametrize("body", [
    b"action=pay&out_trade_no=ORDER_1795000000000_web&token=guess",  # a form it was not shown
    b"action=refund&out_trade_no=ORDER_1795000000000_web&token=x",
    b"action=pay&action=close&out_trade_no=ORDER_1795000000000_web",
    b"\xff\xfe", b"a=" + b"x" * 5000,
])
def test_a_forged_or_malformed_cashier_form_changes_nothing(app_keys, alipay_keys, body):
    sandbox = emulator(app_keys, alipay_keys)
    via_get(sandbox, browser_request(app_keys))
    status, content_type, _ = cashier.act(sandbox, body)
    assert status in (400, 404) and content_type.startswith("text/html")
    assert sandbox.ledger.find(ORDER.out_trade_no).status == WAIT_BUYER_PAY and sandbox.notifier.sent == []


def test_the_scan_page_finds_the_trade_by_its_qr_code_and_pays_it(app_keys, alipay_keys):
    sandbox = emulator(app_keys, alipay_keys)
    code = gateway_client(sandbox, app_keys, alipay_keys).trade_precreate(ORDER, NOTIFY_URL).qr_code
    status, _, body = cashier.scan_page(sandbox, urlencode({"qr_code": code}))
    assert status == 200 and ORDER.out_trade_no in body.decode() and "¥198.01" in body.decode()
    assert cashier.scan_page(sandbox, urlencode({"qr_code": code + "9"}))[0] == 404
    assert cashier.scan_act(sandbox, urlencode({"out_trade_no": ORDER.out_trade_no, "action": "success"}).encode())[0] == 200
    assert sandbox.ledger.find(ORDER.out_trade_no).status == TRADE_SUCCESS
    assert [n[2]["trade_status"] for n in sandbox.notifier.sent] == ["TRADE_SUCCESS"]
    assert cashier.scan_act(sandbox, urlencode({"out_trade_no": ORDER.out_trade_no, "action": "success"}).encode())[0] == 409


def test_a_page_request_under_the_wap_method_is_refused(app_keys, alipay_keys):
    sandbox = emulator(app_keys, alipay_keys)
    page = browser_request(app_keys)
    params = {k: v for k, v in page.params.items() if k != "sign"}
    params["method"] = orderstr.WAP_PAY_METHOD  # re-signed, but biz_content keeps FAST_INSTANT_TRADE_PAY
    status, _, body = sandbox.gateway(orderstr.encode(orderstr.signed_params(app_keys.private_key, params)).encode(), b"")
    assert json.loads(body)["alipay_trade_wap_pay_response"]["sub_code"] == "isv.invalid-product-code"
    assert sandbox.ledger.find(ORDER.out_trade_no) is None


def test_a_tampered_browser_request_is_refused(app_keys, alipay_keys):
    sandbox = emulator(app_keys, alipay_keys)
    query = urlsplit(browser_request(app_keys).url).query.replace("19801", "1").replace("198.01", "0.01")
    body = sandbox.gateway(query.encode(), b"")[2]
    assert json.loads(body)["alipay_trade_page_pay_response"]["sub_code"] == "isv.invalid-signature"


def gateway_client(sandbox, app_keys, alipay_keys, **cert_args):
    transport = lambda url, query, body, timeout: sandbox.gateway(query.encode(), body)[2]  # noqa: E731
    return AlipayGateway(app_id=APP_ID, private_key=app_keys.private_key, alipay_public_key=alipay_keys.public_key,
                         transport=transport, **cert_args)


def test_precreate_gives_a_qr_code_and_scanning_it_pays_and_notifies(app_keys, alipay_keys):
    sandbox = emulator(app_keys, alipay_keys)
    answer = gateway_client(sandbox, app_keys, alipay_keys).trade_precreate(ORDER, NOTIFY_URL)
    assert answer.qr_code.startswith("https://qr.alipay.com/")
    assert sandbox.ledger.find(ORDER.out_trade_no).status == WAIT_BUYER_PAY and sandbox.notifier.sent == []
    assert scan(sandbox, ORDER.out_trade_no)["status"] == TRADE_SUCCESS
    assert [n[2]["trade_status"] for n in sandbox.notifier.sent] == ["TRADE_SUCCESS"]
    assert scan(sandbox, ORDER.out_trade_no) is None  # a QR code pays once


def test_a_scanned_code_the_buyer_abandons_closes(app_keys, alipay_keys):
    sandbox = emulator(app_keys, alipay_keys)
    gateway_client(sandbox, app_keys, alipay_keys).trade_precreate(ORDER, NOTIFY_URL)
    assert scan(sandbox, ORDER.out_trade_no, "closed")["status"] == TRADE_CLOSED
    with pytest.raises(AlipayError) as info:
        gateway_client(sandbox, app_keys, alipay_keys).trade_precreate(ORDER, NOTIFY_URL)
    assert info.value.sub_code == "ACQ.TRADE_HAS_CLOSE"


# --- certificate mode -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(app_keys, alipay_keys):
    return certs.CertFiles.generate(app_keys.private_key, alipay_keys.private_key)


@pytest.fixture
def cert_mode(files):
    sns = cert.CertSN(cert.cert_sn(files.app), cert.alipay_root_cert_sn(files.root_cert))
    return sns, CertMode(sns.app_cert_sn, sns.alipay_root_cert_sn, cert.cert_sn(files.alipay))


def test_certificate_mode_requests_are_accepted_and_answers_name_the_alipay_cert(app_keys, alipay_keys, cert_mode):
    sns, mode = cert_mode
    sandbox = emulator(app_keys, alipay_keys, mode)
    client = gateway_client(sandbox, app_keys, alipay_keys, cert_sn=sns, alipay_cert_sn=mode.alipay_cert_sn)
    assert client.trade_precreate(ORDER, NOTIFY_URL).qr_code
    assert via_get(sandbox, browser_request(app_keys, order=orderstr.PayOrder("ORDER_2", 100, "x"), cert_sn=sns))[0] == 200
    # our client refuses answers naming another certificate; the emulator names the configured one
    other = gateway_client(sandbox, app_keys, alipay_keys, cert_sn=sns, alipay_cert_sn="0" * 32)
    with pytest.raises(Exception, match="alipay_cert_sn"):
        other.trade_query(ORDER.out_trade_no)


@pytest.mark.parametrize("case, sub_code", [
    ("no-sns", "isv.missing-app-cert-sn"),
    ("other-app-cert", "isv.invalid-app-cert-sn"),
    ("other-root", "isv.invalid-alipay-root-cert-sn"),
])
def test_certificate_mode_requests_with_wrong_sns_are_refused(app_keys, alipay_keys, cert_mode, case, sub_code):
    sns, mode = cert_mode
    sandbox = emulator(app_keys, alipay_keys, mode)
    sent = {"no-sns": None, "other-app-cert": cert.CertSN("f" * 32, sns.alipay_root_cert_sn),
            "other-root": cert.CertSN(sns.app_cert_sn, "e" * 32)}[case]
    with pytest.raises(AlipayError) as info:
        gateway_client(sandbox, app_keys, alipay_keys, cert_sn=sent).trade_precreate(ORDER, NOTIFY_URL)
    assert info.value.sub_code == sub_code
    assert sandbox.ledger.find(ORDER.out_trade_no) is None


def test_a_public_key_app_sending_sns_is_refused(app_keys, alipay_keys, cert_mode):
    sns, _ = cert_mode
    sandbox = emulator(app_keys, alipay_keys)
    with pytest.raises(AlipayError) as info:
        gateway_client(sandbox, app_keys, alipay_keys, cert_sn=sns).trade_precreate(ORDER, NOTIFY_URL)
    assert info.value.sub_code == "isv.invalid-app-cert-sn"
