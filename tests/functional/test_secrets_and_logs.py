"""Keys from SSM Parameter Store and Secrets Manager (moto), cached per container with a TTL;
no key material in any log line or response; JSON log lines carry orderNum and request ids."""
from __future__ import annotations

import io
import json
import logging
import types
from urllib.parse import parse_qsl

import boto3
import pytest

from functions.pay.handler import handler as pay
from functions.pay_notify.handler import handler as pay_notify
from local import alipay
from shared import config, logs, secrets
from shared.aws import repository
from shared.alipay import signing

from tests import faults
from tests.faults import sleeps  # noqa: F401 - fixture
from tests.conftest import APP_ID, SELLER_ID, notify_event, pay_event, stored_items

PURCHASE = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01"}
APP_KEY_PARAM = "/alipay-app-pay/test/app-private-key"
ALIPAY_KEY_PARAM = "/alipay-app-pay/test/alipay-public-key"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(secrets.cache, "clock", fake)
    secrets.cache.clear()
    yield fake
    secrets.cache.clear()




@pytest.fixture
def keys_in_ssm(dynamodb, monkeypatch, app_keys, alipay_keys, clock):
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=APP_KEY_PARAM, Value=app_keys.private_pem(), Type="SecureString")
    ssm.put_parameter(Name=ALIPAY_KEY_PARAM, Value=alipay_keys.public_base64(), Type="SecureString")
    monkeypatch.delenv("ALIPAY_APP_PRIVATE_KEY")
    monkeypatch.delenv("ALIPAY_PUBLIC_KEY")
    monkeypatch.setenv("ALIPAY_APP_PRIVATE_KEY_SSM", APP_KEY_PARAM)
    monkeypatch.setenv("ALIPAY_PUBLIC_KEY_SSM", ALIPAY_KEY_PARAM)
    config.reset()
    return ssm


def gets(client, operation):
    """Counts the real client's calls of ``operation`` (a before-call hook, nothing faked)."""
    seen = []
    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}",
                                lambda **kw: seen.append(1))
    return seen


def paid_flow(alipay_keys) -> str:
    reply = pay(pay_event(PURCHASE))
    assert reply["statusCode"] == 200, reply
    out_trade_no = json.loads(reply["body"])["data"]["outTradeNo"]
    params = alipay.notify_params(app_id=APP_ID, out_trade_no=out_trade_no, total_amount="198.01", seller_id=SELLER_ID)
    assert pay_notify(notify_event(alipay.sign_notify(params, alipay_keys.private_key)))["body"] == "success"
    return reply["body"]


def verifies_with(keys, reply_body: str) -> bool:
    params = dict(parse_qsl(json.loads(reply_body)["data"]["orderStr"]))
    content = signing.sign_content(params, signing.REQUEST_EXCLUDED)
    return signing.rsa2_verify(keys.public_key, content, params["sign"])


def test_keys_from_ssm_secure_strings_pay_and_verify(keys_in_ssm, alipay_keys, app_keys):
    assert verifies_with(app_keys, paid_flow(alipay_keys))


def test_keys_from_secrets_manager_pay_and_verify(dynamodb, monkeypatch, app_keys, alipay_keys, clock):
    manager = boto3.client("secretsmanager")
    arn = manager.create_secret(Name="alipay/app-private-key", SecretString=app_keys.private_base64())["ARN"]
    manager.create_secret(Name="alipay/alipay-public-key", SecretString=alipay_keys.public_pem())
    monkeypatch.delenv("ALIPAY_APP_PRIVATE_KEY")
    monkeypatch.delenv("ALIPAY_PUBLIC_KEY")
    monkeypatch.setenv("ALIPAY_APP_PRIVATE_KEY_SECRET", arn)
    monkeypatch.setenv("ALIPAY_PUBLIC_KEY_SECRET", "alipay/alipay-public-key")
    config.reset()
    assert verifies_with(app_keys, paid_flow(alipay_keys))


def test_keys_are_fetched_once_per_ttl_and_a_rotation_is_picked_up(keys_in_ssm, alipay_keys, app_keys, clock, monkeypatch):
    monkeypatch.setenv("SECRETS_TTL_SECONDS", "300")
    fetched = gets(repository.client("ssm"), "GetParameter")
    first = pay(pay_event(PURCHASE))
    for _ in range(4):
        assert pay(pay_event(PURCHASE))["statusCode"] == 200
    assert len(fetched) == 1  # one read for five requests
    assert config.settings().app_private_key is config.settings().app_private_key  # parsed once

    rotated = alipay.KeyPair.generate()
    keys_in_ssm.put_parameter(Name=APP_KEY_PARAM, Value=rotated.private_pem(), Type="SecureString", Overwrite=True)
    clock.now += 299
    assert verifies_with(app_keys, pay(pay_event(PURCHASE))["body"])  # still cached
    clock.now += 2
    after = pay(pay_event(PURCHASE))
    assert verifies_with(rotated, after["body"]) and not verifies_with(app_keys, after["body"])
    assert len(fetched) == 2 and verifies_with(app_keys, first["body"])


def test_a_failed_refresh_keeps_the_cached_key(keys_in_ssm, app_keys, clock, sleeps):
    assert pay(pay_event(PURCHASE))["statusCode"] == 200
    faults.Faults(repository.client("ssm"), "GetParameter", [], forever=faults.THROTTLING)
    clock.now += 301
    reply = pay(pay_event(PURCHASE))
    assert reply["statusCode"] == 200 and verifies_with(app_keys, reply["body"])


@pytest.mark.parametrize("fault", [faults.THROTTLING, faults.INTERNAL_ERROR, faults.READ_TIMEOUT], ids=["throttled", "500", "timeout"])
def test_a_cold_container_without_its_key_fails_closed(keys_in_ssm, dynamodb, alipay_keys, clock, sleeps, fault):
    injected = faults.Faults(repository.client("ssm"), "GetParameter", [], forever=fault)
    reply = pay(pay_event(PURCHASE))
    assert reply["statusCode"] == 500 and json.loads(reply["body"])["msg"] == "server configuration error"
    assert stored_items(dynamodb) == []
    params = alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_1_x", total_amount="1.00", seller_id=SELLER_ID)
    assert pay_notify(notify_event(alipay.sign_notify(params, alipay_keys.private_key)))["body"] == "fail"
    assert injected.sent == 2 * repository.SECRETS.attempts  # one request each, unretried in-request


def test_no_source_configured_names_every_option(dynamodb, monkeypatch):
    monkeypatch.delenv("ALIPAY_APP_PRIVATE_KEY")
    config.reset()
    with pytest.raises(config.ConfigError, match="ALIPAY_APP_PRIVATE_KEY_SSM or ALIPAY_APP_PRIVATE_KEY_SECRET"):
        config.settings().require("app_private_key")


# --- no key material in logs or responses -----------------------------------------------------

def key_fragments(*texts: str) -> list:
    """Every 24-character window (step 24) of each key's base64 body, and the PEM armour."""
    fragments = []
    for text in texts:
        body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
        fragments += [body[i:i + 24] for i in range(0, len(body) - 23, 24)]
    return fragments + ["BEGIN PRIVATE KEY", "BEGIN RSA PRIVATE KEY", "BEGIN PUBLIC KEY"]


def test_no_key_material_reaches_logs_or_responses(keys_in_ssm, dynamodb, app_keys, alipay_keys, clock, sleeps, capfd):
    """The whole flow at DEBUG (botocore then logs raw SSM answers), failure paths included."""
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    replies = []
    try:
        replies.append(paid_flow(alipay_keys))
        replies.append(pay(pay_event({"productId": "P1"}))["body"])  # 400
        faults.Faults(repository.dynamodb_client(), "PutItem", [faults.THROTTLED] * repository.DYNAMODB.attempts)
        replies.append(pay(pay_event(PURCHASE))["body"])  # 500 with a traceback in the log
        forged = alipay.sign_notify(alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_1_x", total_amount="1.00"),
                                    app_keys.private_key)
        replies.append(pay_notify(notify_event(forged))["body"])  # fail: bad signature
        keys_in_ssm.put_parameter(Name=APP_KEY_PARAM, Value=app_keys.private_pem()[:-200] + "broken\n-----END PRIVATE KEY-----",
                                  Type="SecureString", Overwrite=True)
        clock.now += 301
        replies.append(pay(pay_event(PURCHASE))["body"])  # 500: malformed key from SSM
        secrets.cache.clear()
        faults.Faults(repository.client("ssm"), "GetParameter", [], forever=faults.THROTTLING)
        replies.append(pay(pay_event(PURCHASE))["body"])  # 500: SSM unavailable
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    out, err = capfd.readouterr()
    everything = "\n".join([captured.getvalue(), out, err, *replies])
    flattened = everything.replace("\\n", "").replace("\n", "").replace("\\\\", "")
    assert "Response body" in everything and "GetParameter" in everything  # DEBUG really was on
    assert len(captured.getvalue().splitlines()) > 20
    for fragment in key_fragments(app_keys.private_pem(), app_keys.private_pem(pkcs8=False), alipay_keys.private_pem()):
        assert fragment not in flattened, f"key material in output: {fragment!r}"


def test_json_log_lines_carry_order_num_and_request_ids(dynamodb, alipay_keys):
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(logs.JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        event = pay_event(PURCHASE)
        reply = pay(event, types.SimpleNamespace(aws_request_id="lambda-req-1"))
        out_trade_no = json.loads(reply["body"])["data"]["outTradeNo"]
        params = alipay.notify_params(app_id=APP_ID, out_trade_no=out_trade_no, total_amount="198.01", seller_id=SELLER_ID)
        notify = notify_event(alipay.sign_notify(params, alipay_keys.private_key))
        pay_notify(notify, types.SimpleNamespace(aws_request_id="lambda-req-2"))
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    issued = next(line for line in lines if line["message"].startswith("payment issued"))
    assert issued["order_num"] == out_trade_no and issued["function_request_id"] == "lambda-req-1"
    assert issued["api_request_id"] == event["requestContext"]["requestId"] and issued["level"] == "INFO"
    took = next(line for line in lines if line.get("answer") == "success")
    assert took["order_num"] == out_trade_no and took["function_request_id"] == "lambda-req-2"
    assert took["outcome"] == "applied" and took["api_request_id"] == notify["requestContext"]["requestId"]
