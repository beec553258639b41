"""Content encryption (shared/alipay/aes.py) against the official alipay-sdk-python: the same
ciphertext for the same key and text, and encrypted ``sdk_execute`` / ``page_execute`` /
``execute`` equal to ours for the same inputs and timestamp (the sign covers the ciphertext).

The SDK's ``EncryptUtils`` hands ``str`` to pycryptodome (a Python 2 leftover that raises
TypeError on Python 3); ``sdk_aes`` converts exactly those arguments to bytes and changes nothing
else: its padding, zero IV and base64 are what we are compared with.
"""
import base64
import json
import os
from datetime import datetime, timezone

import pytest

pytest.importorskip("alipay.aop.api")

import alipay.aop.api.DefaultAlipayClient as sdk_client_module  # noqa: E402
import alipay.aop.api.util.EncryptUtils as sdk_encrypt  # noqa: E402
from alipay.aop.api.domain.AlipayTradeQueryModel import AlipayTradeQueryModel  # noqa: E402
from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest  # noqa: E402
from Crypto.Cipher import AES as SDK_AES  # noqa: E402

from local import alipay  # noqa: E402
from shared.alipay import aes, orderstr  # noqa: E402
from shared.alipay.gateway import AlipayGateway, GatewayError, parse_response  # noqa: E402

from tests import sdk_oracle as oracle  # noqa: E402
from tests.conftest import APP_ID, NOTIFY_URL  # noqa: E402

pytestmark = pytest.mark.oracle

KEY_TEXT = base64.b64encode(bytes(range(16))).decode()
KEY = aes.load_key(KEY_TEXT)
AT = datetime(2026, 11, 26, 2, 5, 9, tzinfo=timezone.utc)
ORDER = orderstr.PayOrder("ORDER_1764122709000_abcdefghijkl", 19801, "数据恢复产品 A & B", body="加密")


class _Bytes:
    """pycryptodome's cipher, given bytes where the SDK passes str (latin-1: its pad chars are < 128)."""

    def __init__(self, cipher, charset="utf-8"):
        self.cipher, self.charset = cipher, charset

    def encrypt(self, data):
        return self.cipher.encrypt(data.encode(self.charset) if isinstance(data, str) else data)

    def decrypt(self, data):
        return self.cipher.decrypt(data)


class _SdkAes:
    block_size = SDK_AES.block_size
    MODE_CBC = SDK_AES.MODE_CBC

    @staticmethod
    def new(key, mode, iv):
        return _Bytes(SDK_AES.new(key, mode, iv.encode("latin-1") if isinstance(iv, str) else iv))


@pytest.fixture
def sdk_aes(monkeypatch):
    monkeypatch.setattr(sdk_encrypt, "AES", _SdkAes)


def encrypted_sdk(app_keys, alipay_keys=None):
    client = oracle.sdk_client(APP_ID, app_keys.private_base64(pkcs8=False), alipay_keys.public_base64() if alipay_keys else "")
    config = client._DefaultAlipayClient__config
    config.encrypt_type, config.encrypt_key = "AES", KEY_TEXT
    return client


@pytest.mark.parametrize("text", ["", "a", "x" * 15, "y" * 16, "z" * 17, '{"subject":"数据恢复产品 A","total_amount":"198.01"}', "é" * 8])
def test_ciphertext_equals_the_sdks_and_each_decrypts_the_other(sdk_aes, text):
    theirs = sdk_encrypt.encrypt_content(text, "AES", KEY_TEXT, "utf-8")
    assert aes.encrypt(text, KEY) == theirs
    assert aes.decrypt(theirs, KEY) == text
    assert sdk_encrypt.decrypt_content(aes.encrypt(text, KEY), "AES", KEY_TEXT, "utf-8") == text


def test_another_key_or_damaged_ciphertext_is_an_aes_error():
    ciphertext = aes.encrypt('{"a":"b"}', KEY)
    with pytest.raises(aes.AesError):
        aes.decrypt(ciphertext, os.urandom(16))
    for damaged in (ciphertext[:-4], "not base64!", ""):
        with pytest.raises(aes.AesError):
            aes.decrypt(damaged, KEY)
    for bad_key in ("", "abc", base64.b64encode(b"short").decode()):
        with pytest.raises(aes.AesError):
            aes.load_key(bad_key)


def test_encrypted_order_str_equals_sdk_execute(sdk_aes, app_keys):
    mine = oracle.query_params(orderstr.app_pay(app_id=APP_ID, private_key=app_keys.private_key, notify_url=NOTIFY_URL,
                                                order=ORDER, at=AT, aes_key=KEY))
    theirs = oracle.query_params(oracle.sdk_app_pay(
        encrypted_sdk(app_keys), AT, notify_url=NOTIFY_URL, out_trade_no=ORDER.out_trade_no, total_amount="198.01",
        subject=ORDER.subject, body=ORDER.body))
    assert mine == theirs and mine["encrypt_type"] == "AES"
    assert json.loads(aes.decrypt(mine["biz_content"], KEY))["total_amount"] == "198.01"


@pytest.mark.parametrize("http_method", ["GET", "POST"])
def test_encrypted_page_pay_equals_page_execute(sdk_aes, app_keys, http_method):
    page = orderstr.page_pay(app_id=APP_ID, private_key=app_keys.private_key, notify_url=NOTIFY_URL, order=ORDER,
                             gateway="https://openapi.alipay.com/gateway.do", at=AT, aes_key=KEY)
    official = oracle.sdk_page_execute(encrypted_sdk(app_keys), AT, "alipay.trade.page.pay",
                                       ORDER.biz_content(orderstr.PAGE_PAY_PRODUCT_CODE), http_method, notify_url=NOTIFY_URL)
    if http_method == "GET":
        assert oracle.query(page.url) == oracle.query(official)
    else:
        assert oracle.form(page.form) == oracle.form(official)


def test_encrypted_execute_equals_ours_and_both_read_the_encrypted_answer(sdk_aes, monkeypatch, app_keys, alipay_keys):
    """The request (encrypted biz_content, signed after) and the answer (a signed string of ciphertext)."""
    payload = {"code": "10000", "msg": "Success", "out_trade_no": "ORDER_1", "trade_status": "TRADE_SUCCESS",
               "total_amount": "198.01", "trade_no": "2026112622001400000000000001"}
    ciphertext = json.dumps(aes.encrypt(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), KEY))
    body = alipay.response_body("alipay.trade.query", payload, alipay_keys.private_key, raw=ciphertext)
    sent = []

    def do_post(url, query_string=None, headers=None, params=None, charset="utf-8", timeout=15):
        from alipay.aop.api.util.WebUtils import url_encode

        sent.append((query_string, url_encode(params, charset).encode(charset)))
        return body

    monkeypatch.setattr(sdk_client_module, "do_post", do_post)
    model = AlipayTradeQueryModel()
    model.out_trade_no = "ORDER_1"
    with oracle.frozen_sdk_clock(AT):
        sdk_content = encrypted_sdk(app_keys, alipay_keys).execute(AlipayTradeQueryRequest(biz_model=model))

    recorded = []
    gateway = AlipayGateway(app_id=APP_ID, private_key=app_keys.private_key, alipay_public_key=alipay_keys.public_key,
                            transport=lambda url, query, form, timeout: recorded.append((query, form)) or body, aes_key=KEY)
    trade = gateway.trade_query("ORDER_1", at=AT)
    (sdk_query, sdk_body), = sent
    (query, form), = recorded
    assert sorted(query.split("&")) == sorted(sdk_query.split("&")) and "encrypt_type=AES" in query
    assert form == sdk_body
    assert json.loads(sdk_content) == payload and trade.trade_status == "TRADE_SUCCESS" and trade.total_cents == 19801


def test_an_encrypted_answer_is_decrypted_only_after_its_sign_verifies(alipay_keys):
    ciphertext = json.dumps(aes.encrypt('{"code":"10000","msg":"Success","trade_status":"TRADE_SUCCESS"}', KEY))
    body = alipay.response_body("alipay.trade.query", {}, alipay_keys.private_key, raw=ciphertext)
    assert parse_response(body, "alipay.trade.query", alipay_keys.public_key, aes_key=KEY)["trade_status"] == "TRADE_SUCCESS"
    with pytest.raises(GatewayError, match="no ALIPAY_AES_KEY"):
        parse_response(body, "alipay.trade.query", alipay_keys.public_key)
    with pytest.raises(GatewayError, match="does not decrypt"):
        parse_response(body, "alipay.trade.query", alipay_keys.public_key, aes_key=os.urandom(16))
    forged = body.replace(b'"sign":"', b'"sign":"A')
    with pytest.raises(GatewayError, match="signature"):
        parse_response(forged, "alipay.trade.query", alipay_keys.public_key, aes_key=KEY)
