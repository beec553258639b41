"""`make run`: the whole payment flow on this machine, on embedded defaults.

No AWS account and no Alipay contract: DynamoDB is moto's, the Alipay key pair is generated here
and Alipay's notify is signed locally exactly as Alipay signs it. Each step goes through the
real Lambda handlers with real API Gateway events, and is printed.
"""
from __future__ import annotations

import json
import os
from urllib.parse import parse_qsl

DEFAULT_ENV = {
    "ALIPAY_APP_ID": "2021000000000001",
    "ALIPAY_NOTIFY_URL": "https://example.com/pay/notify",
    "ALIPAY_SELLER_ID": "2088000000000001",
    "ORDER_TABLE": "alipay-app-pay-local-Order",
    "AWS_DEFAULT_REGION": "ap-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
}


def step(title: str, detail: object) -> None:
    text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False, indent=2)
    print(f"\n== {title}\n{text}")


def main() -> None:
    import boto3
    from moto import mock_aws

    from local import alipay, events, schema

    app, ali = alipay.KeyPair.generate(), alipay.KeyPair.generate()
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    os.environ["ALIPAY_APP_PRIVATE_KEY"] = app.private_pem()
    os.environ["ALIPAY_PUBLIC_KEY"] = ali.public_base64()

    from functions.pay.handler import handler as pay
    from functions.pay_notify.handler import handler as pay_notify
    from shared.repository import order_repository

    with mock_aws():
        table = os.environ["ORDER_TABLE"]
        schema.create_order_table(boto3.client("dynamodb"), table)
        step("1. DynamoDB (moto) table created from serverless.yml", table)

        request = {"productId": "PROD_123456", "userId": "USER_789", "orderName": "数据恢复产品 A", "total_amount": "198.01"}
        step("2. app -> POST /pay", request)
        reply = pay(events.http_event("POST", "/pay", json.dumps(request).encode(), {"content-type": "application/json"}))
        body = json.loads(reply["body"])
        step(f"   <- HTTP {reply['statusCode']}", body)
        if reply["statusCode"] != 200:
            raise SystemExit("pay failed")
        out_trade_no = body["data"]["outTradeNo"]
        order = order_repository(table).get(out_trade_no)
        step("3. Order row (status 0 = unpaid)", order.to_dict())

        biz = json.loads(dict(parse_qsl(body["data"]["orderStr"]))["biz_content"])
        params = alipay.notify_params(
            app_id=os.environ["ALIPAY_APP_ID"], out_trade_no=out_trade_no, total_amount=biz["total_amount"],
            seller_id=os.environ["ALIPAY_SELLER_ID"],
        )
        notify = alipay.sign_notify(params, ali.private_key)
        form = alipay.form_body(notify)
        step("4. Alipay (played locally) -> POST /pay/notify", form.decode()[:160] + "...")
        headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
        for attempt in ("first delivery", "duplicate delivery"):
            answer = pay_notify(events.http_event("POST", "/pay/notify", form, headers))
            step(f"   <- {attempt}", answer["body"])
        step("5. Order row (status 1 = paid)", order_repository(table).get(out_trade_no).to_dict())


if __name__ == "__main__":
    main()
