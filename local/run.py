"""`make run`: the whole backend on 127.0.0.1:$PORT (3000), no AWS account, no Alipay contract.

- serverless.yml's HTTP routes, each served by its real handler with real API Gateway events;
- DynamoDB from moto, in this process, with the Order table created from serverless.yml;
- the Alipay emulator under /sandbox/ (local/sandbox.py), keys made once into .local/keys.

Every setting is local and forced (the notify URL points back here), so exported production
variables cannot leak into a local run. ``python -m local.run --port 0`` picks a free port.
"""
from __future__ import annotations

import argparse
import base64
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional

from shared import config
from shared.environment import ConfigError
from shared.aws import repository

from local import certs, keys, logformat, schema
from local.notifier import DEFAULT_TIME_SCALE, Notifier
from local.ledger import Ledger

log = logging.getLogger("local")

HOST = "127.0.0.1"
DEFAULT_PORT = 3000
APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
ORDER_TABLE = "alipay-app-pay-local-Order"
IDEMPOTENCY_TABLE = "alipay-app-pay-local-Idempotency"
BILL_REPORT_BUCKET = "alipay-app-pay-local-bills"
DEMO_CATALOG = Path(__file__).with_name("catalog.json")  # PROD_DEMO (0.01), PROD_1 (198.01), PROD_2 (5.00)
LATENCY = "SANDBOX_GATEWAY_LATENCY_MS"
EVENT_BUS = "alipay-app-pay-local-orders"
EVENT_SOURCE = "alipay-app-pay"


def local_env(port: int) -> Dict[str, str]:
    """The variables the handlers read, pointed at this machine."""
    base = f"http://{HOST}:{port}"
    # Prices as deployed: the catalog (the demo one unless PRODUCT_CATALOG names another);
    # PRICE_SOURCE=client (or orders) from the environment for scripted clients.
    source = os.environ.get("PRICE_SOURCE", "").strip() or "catalog"
    catalog = os.environ.get("PRODUCT_CATALOG", "").strip() or (str(DEMO_CATALOG) if source == "catalog" else "")
    return {
        "PRICE_SOURCE": source,
        "PRODUCT_CATALOG": catalog,
        "ALIPAY_APP_ID": APP_ID,
        "ALIPAY_SELLER_ID": SELLER_ID,
        "ALIPAY_NOTIFY_URL": f"{base}/pay/notify",
        "ALIPAY_RETURN_URL": f"{base}/pay/return",
        "ALIPAY_GATEWAY_URL": f"{base}/sandbox/gateway.do",
        "ORDER_TABLE": ORDER_TABLE,
        "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "BILL_REPORT_BUCKET": BILL_REPORT_BUCKET,
        "EVENT_BUS_NAME": EVENT_BUS,
        "EVENT_SOURCE": EVENT_SOURCE,
        "AWS_DEFAULT_REGION": "ap-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        # reconcile's fan-out: boto3's Lambda Invoke reaches this server (local/lambda_api.py)
        "AWS_ENDPOINT_URL_LAMBDA": base,
        "RECONCILE_WORKER_FUNCTION": "alipay-app-pay-local-reconcile_worker",
    }


def gateway_latency(environ: Mapping[str, str]) -> float:
    """``SANDBOX_GATEWAY_LATENCY_MS`` (e.g. 100, as from AWS to Alipay) in seconds; 0 by default."""
    text = environ.get(LATENCY, "").strip() or "0"
    try:
        value = float(text)
    except ValueError:
        raise SystemExit(f"{LATENCY} must be a number of milliseconds, not {text[:32]!r}") from None
    if not 0 <= value <= 60_000:
        raise SystemExit(f"{LATENCY} must be between 0 and 60000 milliseconds")
    return value / 1000


class LocalStack:
    """moto + the emulator + the HTTP server, started and stopped together."""

    def __init__(self, port: int = DEFAULT_PORT, time_scale: float = DEFAULT_TIME_SCALE, cert_mode: bool = False,
                 aes: bool = False) -> None:
        self.requested_port = port
        self.time_scale = time_scale
        self.cert_mode = cert_mode  # public-key-certificate mode for the app and the emulator
        self.aes = aes  # interface content encryption (AES) on, for the app and the emulator
        self.server = None
        self._mock = None
        self._unlock: Callable[[], None] = lambda: None
        self._thread: Optional[threading.Thread] = None
        self.schedules: list = []
        self.pipelines: list = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}"

    def start(self) -> "LocalStack":
        from moto import mock_aws

        from local.faults import FaultSwitch
        from local.sandbox import Sandbox
        from local.server import LocalServer, http_routes

        app, ali = keys.local_keys()
        # Bind first: with --port 0 the notify URL must name the port the OS chose.
        self.server = LocalServer((HOST, self.requested_port), [], None)
        env = local_env(self.server.server_address[1])
        env["ALIPAY_APP_PRIVATE_KEY"] = app.private_pem()
        certificates = self._certificates(app, ali, env)
        if certificates is None:
            env["ALIPAY_PUBLIC_KEY"] = ali.public_pem()
        aes_key = keys.local_aes_key() if self.aes else None
        if aes_key is not None:
            env["ALIPAY_AES_KEY"] = base64.b64encode(aes_key).decode("ascii")
        for name in ("ALIPAY_PUBLIC_KEY", "ALIPAY_AES_KEY", *certs.FILE_NAMES):  # one mode only, whatever was exported
            os.environ.pop(name, None)
        os.environ.update(env)
        config.reset()
        config.settings().require("prices")  # a bad catalog stops make run here; PRICE_SOURCE=client is logged
        repository.reset()
        self._mock = mock_aws()
        self._mock.start()
        from local.moto_lock import serialise_requests

        self._unlock = serialise_requests()  # DynamoDB's per-request atomicity, for the handlers' threads
        schema.create_order_table(repository.dynamodb_client(), ORDER_TABLE)
        schema.create_order_table(repository.dynamodb_client(), IDEMPOTENCY_TABLE, "IdempotencyTable")
        schema.create_report_bucket(repository.client("s3"), BILL_REPORT_BUCKET)
        self.server.routes = http_routes()
        # the handlers' own clients: `POST /local/faults {"events": {"fail_next": 3}}` fails PutEvents
        self.server.faults = FaultSwitch({"dynamodb": repository.dynamodb_client(), "events": repository.client("events")})
        self.server.sandbox = Sandbox(
            app_id=APP_ID, seller_id=SELLER_ID, app_public_key=app.public_key, alipay_private_key=ali.private_key,
            notifier=Notifier(Ledger(), self.time_scale), certs=certificates, aes_key=aes_key,
            gateway_latency=gateway_latency(os.environ),
        )
        self.server.sandbox.base_url = f"{self.url}/sandbox"
        self._thread = threading.Thread(target=self.server.serve_forever, name="local-server", daemon=True)
        self._thread.start()
        from local.schedule import start_schedules
        from local.server import functions

        declared = functions()
        self.schedules = start_schedules(declared, os.environ)  # e.g. reconcile, every RECONCILE_INTERVAL_SECONDS
        self.pipelines = self._order_events(declared)
        return self

    def _order_events(self, functions) -> list:
        """The stream functions of serverless.yml (publish_events) over moto's Order table stream."""
        from local.order_events import LocalEventBus, OrderEventsPipeline

        bus = LocalEventBus(EVENT_BUS, EVENT_SOURCE, os.environ.get("LOCAL_EVENTS_WEBHOOK", "").strip() or None)
        self.server.order_events = bus
        return [OrderEventsPipeline(ORDER_TABLE, f.invoke, stream, bus).start()
                for f in functions.values() for stream in f.streams]

    def _certificates(self, app, ali, env: Dict[str, str]) -> Optional["CertMode"]:
        """Certificate mode: the three files (made once into .local/certs), named by path in
        ``env``, and the SNs the emulator expects; None in public-key mode."""
        if not self.cert_mode:
            return None
        from shared.alipay import cert

        from local.sandbox import CertMode

        paths = certs.local_cert_files(keys.local_dir() / "certs", app.private_key, ali.private_key)
        env.update({name: str(path) for name, path in paths.items()})
        return CertMode(
            cert.app_cert_sn(str(paths["ALIPAY_APP_CERT"]), app.private_key),
            cert.alipay_root_cert_sn(str(paths["ALIPAY_ROOT_CERT"])),
            cert.alipay_cert(str(paths["ALIPAY_CERT"])).sn,
        )

    def stop(self) -> None:
        for schedule in self.schedules:
            schedule.stop()
        for pipeline in self.pipelines:
            pipeline.stop()
        if self.server is not None:
            if self.server.sandbox is not None:
                self.server.sandbox.notifier.stop()
            self.server.shutdown()
            self.server.server_close()
        if self._mock is not None:
            self._mock.stop()
            self._unlock()
        repository.reset()
        config.reset()


def banner(stack: LocalStack) -> str:
    url = stack.url
    routes = "\n".join(f"  {r.method:4} {url}{r.path:<28} -> {r.function}" for r in stack.server.routes)
    from local.sandbox import GATEWAY_METHODS

    gateway_methods = ", ".join(GATEWAY_METHODS)
    source = os.environ.get("PRICE_SOURCE")
    prices = {
        "catalog": f"catalog {os.environ.get('PRODUCT_CATALOG')} (PRICE_SOURCE=client make run trusts the client's total_amount)",
        "client": "the client's total_amount (PRICE_SOURCE=client: a logged opt-in, never a deployed default)",
        "orders": "stored orders only (PRICE_SOURCE=orders): POST /pay {\"outTradeNo\": ...} after make invoke FUNCTION=add_order",
    }.get(source, source)
    schedules = "".join(f"\n  every {s.seconds:g} s: {s.function.name} (`make {s.function.name}` runs one now)" for s in stack.schedules)
    return f"""\
alipay-app-pay, local stack on {url}
  Checkout: open {url}/ in a browser (pick a product and a channel, pay at the emulated cashier)
{routes}
  POST {url}/sandbox/app-pay?outcome=success|closed|drop   (Alipay's app SDK, emulated)
  POST {url}/sandbox/gateway.do                           ({gateway_methods}; signed)
  POST {url}/sandbox/v3/alipay/trade/query …              (OpenAPI v3 of the same methods: endpoint {url}/sandbox)
  GET  {url}/sandbox/trades/{{outTradeNo}}                 (the emulator's ledger and notify log)
  POST {url}/local/invoke/{{function}}                      (direct invocation, the body is the event)
  POST {url}/local/faults                                 ({{"dynamodb": {{"fail_next": N}}}}: the next N DynamoDB calls fail; also "events")
  GET  {url}/local/events?outTradeNo=...                  (order events from the table's stream, as the bus delivered them)
  GET  {url}/local/bills/{{YYYY-MM-DD}}                     (bill_reconcile's report: make invoke FUNCTION=bill_reconcile EVENT='{{"date":"…"}}')
  POST {url}/sandbox/bills/plant                          (plant discrepancies in a day's bill; GET /sandbox/bills/{{YYYY-MM-DD}} is the zip){schedules}
  DynamoDB: moto, in process, table {ORDER_TABLE} (from serverless.yml)
  Keys: {keys.local_dir() / 'keys'} (app + emulated Alipay, made on first run)
  Notify retries: Alipay's schedule x {stack.time_scale:g}
  Prices: {prices}
  Gateway latency: {stack.server.sandbox.gateway_latency * 1000:g} ms per call (SANDBOX_GATEWAY_LATENCY_MS)
  Signing: {"certificate mode, files in " + str(keys.local_dir() / "certs") if stack.cert_mode else "public-key mode"}{", content encryption (AES)" if stack.aes else ""}
  Other channels: POST /pay with "channel": "page" or "wap" (open payUrl: the emulated cashier lets
    the buyer pay, cancel or close; paid returns to /pay/return) or "precreate" (then open
    {url}/sandbox/scan?out_trade_no=... or POST it), "jsapi" with "buyerId" (the same scan plays
    my.tradePay), "barcode" with "authCode" (ending 0001: the buyer confirms later, 0002: never,
    0003: invalid; any other 16-24 digits from 25-30: paid at once)
  Logs: one line per event (Asia/Shanghai time, order, amount); LOG_FORMAT=json for Lambda's JSON lines

Walk-through (or `make demo` in another terminal):
  REPLY=$(curl -s -X POST {url}/pay -H 'content-type: application/json' \\
    -d '{{"productId":"PROD_DEMO","userId":"USER_1","orderName":"Demo","total_amount":"0.01"}}')
  ORDER_STR=$(printf '%s' "$REPLY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["orderStr"])')
  NO=$(printf '%s' "$REPLY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["outTradeNo"])')
  curl -s -X POST '{url}/sandbox/app-pay?outcome=success' --data-binary "$ORDER_STR"; echo
  sleep 1; curl -s {url}/orders/$NO; echo        # status 1 = paid
Ctrl-C stops it."""


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or DEFAULT_PORT))
    parser.add_argument(
        "--time-scale", type=float, default=float(os.environ.get("SANDBOX_TIME_SCALE") or DEFAULT_TIME_SCALE),
        help="multiplier for Alipay's notify retry delays (default 1/600: 4 minutes -> 0.4 s)",
    )
    parser.add_argument(
        "--cert-mode", action="store_true", default=os.environ.get("SANDBOX_CERT_MODE") == "1",
        help="public-key-certificate mode: certificates in .local/certs, SNs checked by the emulator",
    )
    parser.add_argument(
        "--aes", action="store_true", default=os.environ.get("SANDBOX_AES") == "1",
        help="interface content encryption: biz_content and answers AES-encrypted (key in .local/keys)",
    )
    args = parser.parse_args(argv)
    logformat.install(os.environ.get("LOG_FORMAT"))  # readable lines; LOG_FORMAT=json: Lambda's JSON lines
    logging.getLogger().setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        stack = LocalStack(args.port, args.time_scale, args.cert_mode, args.aes).start()
    except OSError as exc:
        raise SystemExit(f"cannot serve on {HOST}:{args.port} ({exc.strerror}); try PORT=3100 make run") from None
    except ConfigError as exc:
        raise SystemExit(f"make run: {exc}") from None
    print(banner(stack), flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it like Ctrl-C does
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("local stack stopped", flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
