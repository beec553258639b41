"""The gateway client in certificate mode: SNs on every request, answers checked against the
configured Alipay certificate's SN and verified with its key."""
import pytest

from local import alipay, certs
from shared.alipay import cert
from shared.alipay.gateway import AlipayGateway, GatewayError

from tests.fake_alipay import APP_ID, FakeAlipay, Trade

QUERY = "alipay.trade.query"


@pytest.fixture(scope="module")
def files(app_keys, alipay_keys):
    return certs.CertFiles.generate(app_keys.private_key, alipay_keys.private_key)


def gateway(files, app_keys, transport):
    return AlipayGateway(
        app_id=APP_ID, private_key=app_keys.private_key, alipay_public_key=cert.alipay_cert(files.alipay_cert).public_key,
        transport=transport, cert_sn=cert.CertSN(cert.cert_sn(files.app), cert.alipay_root_cert_sn(files.root_cert)),
        alipay_cert_sn=cert.cert_sn(files.alipay),
    )


def answering(fake, sn):
    """The fake's answers, re-rendered with ``alipay_cert_sn`` as Alipay adds it in certificate mode."""
    def transport(url, query, body, timeout):
        raw = fake(url, query, body, timeout)
        return raw.replace(b',"sign":', f',"alipay_cert_sn":"{sn}","sign":'.encode(), 1) if sn else raw
    return transport


def test_requests_carry_the_sns_under_the_signature(files, app_keys, alipay_keys):
    fake = FakeAlipay(app_keys, alipay_keys)  # it checks our RSA2 signature over every parameter
    fake.trades["ORDER_1"] = Trade(total_amount="1.00")
    gateway(files, app_keys, answering(fake, cert.cert_sn(files.alipay))).trade_query("ORDER_1")
    sent = fake.requests[-1]
    assert sent["app_cert_sn"] == cert.cert_sn(files.app)
    assert sent["alipay_root_cert_sn"] == cert.alipay_root_cert_sn(files.root_cert)


def test_an_answer_naming_another_certificate_is_untrusted(files, app_keys, alipay_keys):
    fake = FakeAlipay(app_keys, alipay_keys)
    fake.trades["ORDER_1"] = Trade(total_amount="1.00")
    with pytest.raises(GatewayError, match="alipay_cert_sn"):
        gateway(files, app_keys, answering(fake, "f" * 32)).trade_query("ORDER_1")


def test_an_answer_without_a_certificate_sn_is_verified_by_the_certificates_key(files, app_keys, alipay_keys):
    fake = FakeAlipay(app_keys, alipay_keys)
    fake.trades["ORDER_1"] = Trade(total_amount="1.00", trade_status="TRADE_SUCCESS")
    assert gateway(files, app_keys, answering(fake, None)).trade_query("ORDER_1").trade_status == "TRADE_SUCCESS"
    forged = FakeAlipay(app_keys, alipay.KeyPair.generate())  # signs answers with another key
    forged.trades["ORDER_1"] = Trade(total_amount="1.00")
    with pytest.raises(GatewayError, match="signature"):
        gateway(files, app_keys, answering(forged, cert.cert_sn(files.alipay))).trade_query("ORDER_1")
