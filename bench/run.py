"""``make bench``: what a payment costs here, next to its limit and its reference, in one run.

Every figure is measured in this run on this machine: signing an orderStr (ours, the official
SDK's ``sdk_execute``, ``openssl speed rsa2048``), verifying a notify (ours, openssl), a cold
start from nothing to the first orderStr (ours, the SDK; boto3's import apart), warm handler
latency on moto with the DynamoDB share taken out, and the zips ``serverless package`` makes.
Each is min / median / max over repeats; the ratios against the goals come last.

    python -m bench.run [--quick] [--repeats N] [--no-package]

Per-operation and cold-start figures are CPU time, as ``openssl speed`` reports its own (user CPU
time), so load from other work on a shared machine counts against neither side; handler latency is
wall time, with CPU time beside it. Comparisons are interleaved (openssl, ours, SDK, ours, ...);
"best" ratios compare minima (least disturbed), "median" ratios compare medians.
"""
from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import floor, memory  # noqa: E402
from local import alipay, events, schema  # noqa: E402
from shared import config  # noqa: E402
from shared.alipay import notify, orderstr, signing

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
NOTIFY_URL = "https://pay.example.com/pay/notify"
TABLE = "alipay-app-pay-bench-Order"
SUBJECT = "数据恢复产品 A"
BODY = "订单 ORDER_1764143434644 的描述"
AMOUNT = "198.01"
CENTS = 19801
OUT_TRADE_NO = "ORDER_1764143434644_cs6xps9jy0ab"
AT = datetime(2026, 11, 26, 15, 50, 34, tzinfo=timezone(timedelta(hours=8)))


# --- reporting ---------------------------------------------------------------------------------

@dataclass
class Figure:
    name: str
    unit: str
    samples: List[float]
    note: str = ""

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)


@dataclass
class Report:
    figures: List[Figure] = field(default_factory=list)
    ratios: List[Tuple[str, str, str, Optional[bool]]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def add(self, name: str, unit: str, samples: Sequence[float], note: str = "") -> Figure:
        fig = Figure(name, unit, list(samples), note)
        self.figures.append(fig)
        return fig

    def ratio(self, name: str, value: str, goal: str, ok: Optional[bool]) -> None:
        self.ratios.append((name, value, goal, ok))

    def print(self, out=sys.stdout) -> None:
        width = max(len(f.name) for f in self.figures) if self.figures else 20
        out.write(f"{'figure':<{width}}  {'unit':<4} {'min':>10} {'median':>10} {'max':>10}  {'n':>3}\n")
        for f in self.figures:
            out.write(f"{f.name:<{width}}  {f.unit:<4} {_num(f.min):>10} {_num(f.median):>10} {_num(f.max):>10}"
                      f"  {len(f.samples):>3}{'  ' + f.note if f.note else ''}\n")
        for note in self.notes:
            out.write(f"  note: {note}\n")
        out.write("\nratios (goal)\n")
        rwidth = max((len(r[0]) for r in self.ratios), default=20)
        vwidth = max((len(r[1]) for r in self.ratios), default=20)
        for name, value, goal, ok in self.ratios:
            verdict = ("n/a" if goal else "") if ok is None else ("met" if ok else "MISSED")
            goal = f"goal {goal}" if goal else ""
            out.write(f"  {name:<{rwidth}}  {value:<{vwidth}}  {goal:<14} {verdict}".rstrip() + "\n")
        out.flush()


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(a: Figure, b: Figure) -> Tuple[float, float]:
    """(best, median) ratios a/b."""
    return a.min / b.min, a.median / b.median


# --- timing ------------------------------------------------------------------------------------

def per_call(fn: Callable[[], object], calls: int) -> float:
    """Mean CPU seconds per call over one batch.

    CPU time, because ``openssl speed`` divides by its user CPU time too: on a machine shared
    with other work, wall time would charge us for their load and not openssl.
    """
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls


def calls_for(fn: Callable[[], object], seconds: float) -> int:
    """How many calls make a batch of about ``seconds`` (after one warm-up call)."""
    fn()
    one = per_call(fn, 3)
    return max(1, int(seconds / one))


_OPENSSL_ROW = re.compile(r"^rsa\s+2048\s+bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)\s*$", re.M)


def openssl_speed(seconds: int) -> Optional[Tuple[float, float]]:
    """(sign, verify) CPU seconds per operation from ``openssl speed -seconds N rsa2048``; None without openssl.

    openssl counts operations for N seconds of wall time and divides by its user CPU time.
    """
    exe = shutil.which("openssl")
    if exe is None:
        return None
    out = subprocess.run([exe, "speed", "-seconds", str(seconds), "rsa2048"],
                         capture_output=True, text=True, timeout=120).stdout
    match = _OPENSSL_ROW.search(out)
    if not match:
        raise RuntimeError(f"cannot read openssl speed output:\n{out[-500:]}")
    return 1 / float(match[1]), 1 / float(match[2])


# --- the pieces under test ---------------------------------------------------------------------

@dataclass
class Fixture:
    app_keys: alipay.KeyPair
    alipay_keys: alipay.KeyPair
    env: Dict[str, str]

    @classmethod
    def create(cls) -> "Fixture":
        app_keys, alipay_keys = alipay.KeyPair.generate(), alipay.KeyPair.generate()
        env = {
            "ALIPAY_APP_ID": APP_ID,
            "ALIPAY_APP_PRIVATE_KEY": app_keys.private_pem(),
            "ALIPAY_PUBLIC_KEY": alipay_keys.public_base64(),
            "ALIPAY_NOTIFY_URL": NOTIFY_URL,
            "ALIPAY_SELLER_ID": SELLER_ID,
            "ORDER_TABLE": TABLE,
            "AWS_DEFAULT_REGION": "ap-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "LOG_LEVEL": "INFO",
        }
        return cls(app_keys, alipay_keys, env)

    def notify_body(self, out_trade_no: str = OUT_TRADE_NO, amount: str = AMOUNT) -> bytes:
        params = alipay.notify_params(app_id=APP_ID, out_trade_no=out_trade_no, total_amount=amount,
                                      seller_id=SELLER_ID, subject=SUBJECT, body=BODY)
        return alipay.form_body(alipay.sign_notify(params, self.alipay_keys.private_key))


def crypto_figures(report: Report, fx: Fixture, repeats: int, seconds: float, openssl_seconds: int) -> dict:
    """Sign one orderStr (ours, SDK, openssl) and verify one notify (ours, openssl), interleaved."""
    from tests import sdk_oracle  # the official SDK, driven as the tests drive it (dev dependency)

    cfg = config.Settings(fx.env).require("app_id", "app_private_key", "notify_url", "alipay_public_key", "seller_id")
    sdk = sdk_oracle.sdk_client(APP_ID, fx.app_keys.private_base64(pkcs8=False))
    # Configuration is read before the clock starts: the goals time building + signing and parsing
    # + verifying, and the settings' look-ups (the secrets cache) are neither.
    app_id, notify_url, seller_id = cfg.app_id, cfg.notify_url, cfg.seller_id
    private_key, public_key = cfg.app_private_key, cfg.alipay_public_key

    def ours_sign(at=None) -> str:
        order = orderstr.AppPayOrder(OUT_TRADE_NO, CENTS, SUBJECT, BODY)
        return orderstr.app_pay(app_id=app_id, private_key=private_key, notify_url=notify_url, order=order, at=at)

    def sdk_sign(at=AT) -> str:
        return sdk_oracle.sdk_app_pay(sdk, at, notify_url=NOTIFY_URL, out_trade_no=OUT_TRADE_NO,
                                      total_amount=AMOUNT, subject=SUBJECT, body=BODY)

    same = sdk_oracle.query_params(ours_sign(AT)) == sdk_oracle.query_params(sdk_sign(AT))
    report.notes.append(f"our orderStr equals the official SDK's for the same inputs and timestamp: {'yes' if same else 'NO'}")

    body = fx.notify_body()

    def ours_verify():
        return notify.verify_notify(body, public_key=public_key, app_id=app_id, seller_id=seller_id)

    # The floor under ours: the RSA2 call alone (cryptography), on the same sign content.
    params = sdk_oracle.query_params(ours_sign())
    request_content = signing.sign_content(params)
    notify_params = notify.parse_form(body)
    notify_content = signing.check_content(notify_params)

    def rsa_sign():
        return signing.rsa2_sign(private_key, request_content)

    def rsa_verify():
        return signing.rsa2_verify(public_key, notify_content, notify_params["sign"])

    # The floor (bench/floor.py): only the work no implementation can skip, fixed parts made once.
    build_floor, verify_floor = floor.app_pay_floor(app_id, private_key, notify_url), floor.verify_floor(public_key)
    same_floor = (sdk_oracle.query_params(build_floor(OUT_TRADE_NO, CENTS, SUBJECT, BODY, AT))
                  == sdk_oracle.query_params(ours_sign(AT)))
    if not (same_floor and verify_floor(body) and not verify_floor(body.replace(AMOUNT.encode(), b"198.02"))):
        raise RuntimeError("bench/floor.py does not do what ours does: its figures would mean nothing")

    def floor_sign():
        return build_floor(OUT_TRADE_NO, CENTS, SUBJECT, BODY)

    def floor_verify():
        return verify_floor(body)

    sign_calls, verify_calls = calls_for(ours_sign, seconds), calls_for(ours_verify, seconds)
    sdk_calls = max(2, calls_for(sdk_sign, seconds / 2))
    samples: Dict[str, List[float]] = {
        k: [] for k in ("sign", "sdk", "verify", "ossl_sign", "ossl_verify", "rsa_sign", "rsa_verify",
                        "floor_sign", "floor_verify")
    }
    have_openssl = True
    for _ in range(repeats):
        speed = openssl_speed(openssl_seconds)
        if speed is None:
            have_openssl = False
        else:
            samples["ossl_sign"].append(speed[0])
            samples["ossl_verify"].append(speed[1])
        samples["sign"].append(per_call(ours_sign, sign_calls))
        samples["sdk"].append(per_call(sdk_sign, sdk_calls))
        samples["verify"].append(per_call(ours_verify, verify_calls))
        samples["rsa_sign"].append(per_call(rsa_sign, sign_calls))
        samples["rsa_verify"].append(per_call(rsa_verify, verify_calls))
        samples["floor_sign"].append(per_call(floor_sign, sign_calls))
        samples["floor_verify"].append(per_call(floor_verify, verify_calls))

    us = lambda xs: [x * 1e6 for x in xs]  # noqa: E731
    figs = {
        "sign": report.add("sign orderStr: ours (orderstr.app_pay)", "µs", us(samples["sign"]), f"{sign_calls} calls/repeat"),
        "sdk": report.add("sign orderStr: official SDK sdk_execute", "µs", us(samples["sdk"]), f"{sdk_calls} calls/repeat"),
    }
    figs["rsa_sign"] = report.add("sign: the RSA2 call alone (cryptography)", "µs", us(samples["rsa_sign"]))
    figs["floor_sign"] = report.add("sign: the floor (bench/floor.py)", "µs", us(samples["floor_sign"]),
                                    "unavoidable work only, fixed parts precomputed")
    if have_openssl:
        figs["ossl_sign"] = report.add("sign: openssl speed rsa2048", "µs", us(samples["ossl_sign"]),
                                       f"openssl speed -seconds {openssl_seconds} rsa2048")
    figs["verify"] = report.add("verify notify: ours (parse + verify_notify)", "µs", us(samples["verify"]),
                                f"{verify_calls} calls/repeat, {len(body)}-byte body")
    figs["rsa_verify"] = report.add("verify: the RSA2 call alone (cryptography)", "µs", us(samples["rsa_verify"]))
    figs["floor_verify"] = report.add("verify: the floor (bench/floor.py)", "µs", us(samples["floor_verify"]),
                                      "decode, split, sort, verify; no checks")
    if have_openssl:
        figs["ossl_verify"] = report.add("verify: openssl speed rsa2048", "µs", us(samples["ossl_verify"]))
    else:
        report.notes.append("openssl is not on PATH: no openssl figures, its ratios are n/a")
    return figs


# --- cold start --------------------------------------------------------------------------------

# Each child prints (CLOCK_MONOTONIC, process CPU time) at its phase boundaries. The CPU clock starts
# with the process, so its last reading is the CPU from nothing to orderStr; the parent reads the
# system-wide monotonic clock just before spawning, which gives the wall time too.
_CLOCK = ("import time\nclock = lambda: (time.clock_gettime(time.CLOCK_MONOTONIC), time.process_time())\n"
          "t0 = clock()\n")
OURS_CHILD = _CLOCK + """
import functions.pay.handler  # what the Lambda runtime imports at init
from shared import config
from shared.alipay import orderstr
t1 = clock()
cfg = config.settings().require("app_id", "app_private_key", "notify_url")
t2 = clock()
order_str = orderstr.app_pay(app_id=cfg.app_id, private_key=cfg.app_private_key, notify_url=cfg.notify_url,
                             order=orderstr.AppPayOrder("ORDER_1764143434644_cs6xps9jy0ab", 19801, "数据恢复产品 A"))
t3 = clock()
assert "sign=" in order_str
print(*t0, *t1, *t2, *t3)
"""
SDK_CHILD = _CLOCK + """
import os
from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.domain.AlipayTradeAppPayModel import AlipayTradeAppPayModel
from alipay.aop.api.request.AlipayTradeAppPayRequest import AlipayTradeAppPayRequest
t1 = clock()
conf = AlipayClientConfig()
conf.app_id, conf.app_private_key, conf.sign_type = os.environ["ALIPAY_APP_ID"], os.environ["SDK_PRIVATE_KEY"], "RSA2"
client = DefaultAlipayClient(conf)
model = AlipayTradeAppPayModel()
model.out_trade_no, model.total_amount, model.subject = "ORDER_1764143434644_cs6xps9jy0ab", "198.01", "数据恢复产品 A"
model.product_code, model.timeout_express = "QUICK_MSECURITY_PAY", "30m"
request = AlipayTradeAppPayRequest(biz_model=model)
request.notify_url = os.environ["ALIPAY_NOTIFY_URL"]
t2 = clock()
order_str = client.sdk_execute(request)  # the SDK parses its key inside every call
t3 = clock()
assert "sign=" in order_str
print(*t0, *t1, *t2, *t3)
"""
BOTO3_CHILD = _CLOCK + """
import boto3
t1 = clock()
boto3.client("dynamodb")
t2 = clock()
print(*t0, *t1, *t2, *t2)
"""


def child(code: str, env: Dict[str, str], cwd: Path, flags: Sequence[str] = ()) -> List[float]:
    """Run ``code`` in a fresh interpreter. Seconds: [CPU total, CPU of phases 1-3, wall total].

    The child's CPU clock starts with the process, so its total is from nothing to orderStr.
    """
    start = time.clock_gettime(time.CLOCK_MONOTONIC)
    out = subprocess.run([sys.executable, *flags, "-c", code], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"cold-start child failed:\n{out.stderr[-2000:]}")
    _, c0, _, c1, _, c2, w3, c3 = map(float, out.stdout.split())
    return [c3, c1 - c0, c2 - c1, c3 - c2, w3 - start]


_LIST_MODULES = "\nimport sys, json\nprint(json.dumps([getattr(m, '__file__', None) for m in list(sys.modules.values())]))\n"
_PARTIAL = {"alipay"}  # 318 MB of generated models: copy only the modules the child imports


def lambda_like_tree(dest: Path, code: str, env: Dict[str, str]) -> Path:
    """The code ``code`` imports, as a Lambda deployment holds it: sources without .pyc.

    Lambda's /var/task and /opt are read-only and the layer is pip-installed with --no-compile,
    so a function's own modules and its libraries compile at every cold start; only the
    runtime's standard library comes compiled. The tree gets the project files and every
    site-packages package the child imports (whole, so data files and native libraries come
    along), and the children run in it with -B.
    """
    out = subprocess.run([sys.executable, "-c", code + _LIST_MODULES], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"cold-start child failed:\n{out.stderr[-2000:]}")
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in filter(None, json.loads(out.stdout.splitlines()[-1])):
        path = Path(name).resolve()
        if path.is_relative_to(site):
            rel, project = path.relative_to(site), False
        elif path.is_relative_to(ROOT) and not path.is_relative_to(ROOT / ".venv"):
            rel, project = path.relative_to(ROOT), True
        else:
            continue  # the standard library: compiled on Lambda too
        top = rel.parts[0]
        if project or len(rel.parts) == 1 or top in _PARTIAL:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
        elif not (dest / top).exists():
            shutil.copytree(site / top, dest / top, ignore=ignore)
    return dest


def cold_start_figures(report: Report, fx: Fixture, repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "PYTHON"))}
    env.update(fx.env, SDK_PRIVATE_KEY=fx.app_keys.private_base64(pkcs8=False))
    samples: Dict[str, List[List[float]]] = {k: [] for k in ("ours", "ours_src", "sdk", "sdk_src", "boto3", "bare")}
    with tempfile.TemporaryDirectory(prefix="bench-lambda-") as tmp:
        ours_tree = lambda_like_tree(Path(tmp) / "ours", OURS_CHILD, env)
        sdk_tree = lambda_like_tree(Path(tmp) / "sdk", SDK_CHILD, env)
        child(OURS_CHILD, env, ROOT)  # writes our .pyc once, as a developer's tree has them
        for _ in range(repeats):
            samples["bare"].append(child(_CLOCK + "print(*t0, *t0, *t0, *t0)", env, ROOT))
            samples["ours"].append(child(OURS_CHILD, env, ROOT))
            samples["sdk"].append(child(SDK_CHILD, env, ROOT))
            samples["ours_src"].append(child(OURS_CHILD, env, ours_tree, ["-B"]))
            samples["sdk_src"].append(child(SDK_CHILD, env, sdk_tree, ["-B"]))
            samples["boto3"].append(child(BOTO3_CHILD, env, ROOT))

    ms = lambda rows, i: [r[i] * 1e3 for r in rows]  # noqa: E731
    lambda_note = "CPU; project + libraries from source (-B), as on Lambda"
    figs = {
        "bare": report.add("cold start: bare interpreter (python -c)", "ms", ms(samples["bare"], 0), "CPU"),
        "ours": report.add("cold start to 1st orderStr: ours, .pyc cached", "ms", ms(samples["ours"], 0), "CPU"),
        "sdk": report.add("cold start to 1st orderStr: SDK, .pyc cached", "ms", ms(samples["sdk"], 0), "CPU"),
        "ours_src": report.add("cold start to 1st orderStr: ours, as on Lambda", "ms", ms(samples["ours_src"], 0),
                               lambda_note),
    }
    report.add("  ours: imports (pay handler + shared)", "ms", ms(samples["ours_src"], 1), "as on Lambda")
    report.add("  ours: config + key load", "ms", ms(samples["ours_src"], 2))
    report.add("  ours: first sign", "ms", ms(samples["ours_src"], 3))
    report.add("  ours: wall clock", "ms", ms(samples["ours_src"], 4), "spawn to orderStr")
    figs["sdk_src"] = report.add("cold start to 1st orderStr: SDK, as on Lambda", "ms", ms(samples["sdk_src"], 0),
                                 lambda_note)
    report.add("  SDK: imports", "ms", ms(samples["sdk_src"], 1), "as on Lambda")
    report.add("  SDK: first sdk_execute (parses the key)", "ms", ms(samples["sdk_src"], 3))
    report.add("  SDK: wall clock", "ms", ms(samples["sdk_src"], 4), "spawn to orderStr")
    figs["boto3_import"] = report.add("boto3: import (both need it; in neither total)", "ms", ms(samples["boto3"], 1),
                                      "CPU, .pyc cached")
    figs["boto3_client"] = report.add("boto3: first client('dynamodb')", "ms", ms(samples["boto3"], 2))
    return figs


# --- warm handlers on moto ---------------------------------------------------------------------

def handler_figures(report: Report, fx: Fixture, calls: int) -> dict:
    """Warm pay and pay_notify on moto's in-process DynamoDB; DynamoDB's share measured apart.

    Every botocore API call goes through ``BaseClient._make_api_call``; timing it (serialising,
    moto, parsing, error mapping) gives the DynamoDB share, and the rest is ours.
    """
    import boto3
    import botocore.client
    from moto import mock_aws

    from shared.aws import repository

    saved_env = dict(os.environ)
    os.environ.update(fx.env)
    config.reset()
    repository.reset()
    in_dynamodb = [0.0, 0.0, 0, 0.0]  # wall, CPU, calls, CPU inside moto (what DynamoDB itself does)
    original = botocore.client.BaseClient._make_api_call
    from moto.core.botocore_stubber import BotocoreStubber
    moto_call = BotocoreStubber.__call__

    def timed_moto(self, *args, **kwargs):
        cpu = time.process_time()
        try:
            return moto_call(self, *args, **kwargs)
        finally:
            in_dynamodb[3] += time.process_time() - cpu

    def timed(self, operation_name, api_params):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return original(self, operation_name, api_params)
        finally:
            in_dynamodb[0] += time.perf_counter() - wall
            in_dynamodb[2] += 1
            in_dynamodb[1] += time.process_time() - cpu

    # Lambda's runtime logs to CloudWatch through its root handler, which shared.logs gives our JSON
    # formatter: one handler, ours, writing every line (to /dev/null here, not to the terminal).
    from shared import logs

    sink = open(os.devnull, "w", encoding="utf-8")
    log_handler = logging.StreamHandler(sink)
    log_handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    saved_handlers, root.handlers = root.handlers, [log_handler]
    try:
        with mock_aws():
            schema.create_order_table(boto3.client("dynamodb"), TABLE)
            from functions.pay.handler import handler as pay
            from functions.pay_notify.handler import handler as pay_notify

            def pay_event(i: int) -> dict:
                payload = {"productId": f"p{i}", "userId": "u1", "orderName": SUBJECT, "total_amount": AMOUNT, "body": BODY}
                return events.http_event("POST", "/pay", json.dumps(payload, ensure_ascii=False).encode(),
                                         {"content-type": "application/json"})

            def run(handler, event, expect: Callable[[dict], bool]) -> Tuple[float, float, float, float, int, float, dict]:
                in_dynamodb[:] = [0.0, 0.0, 0, 0.0]
                wall, cpu = time.perf_counter(), time.process_time()
                reply = handler(event, None)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if not expect(reply):
                    raise RuntimeError(f"unexpected reply: {reply}")
                return wall, in_dynamodb[0], cpu, in_dynamodb[1], in_dynamodb[2], in_dynamodb[3], reply

            botocore.client.BaseClient._make_api_call = timed
            BotocoreStubber.__call__ = timed_moto
            pay_ok = lambda r: r["statusCode"] == 200  # noqa: E731
            warm = 3
            pays = [run(pay, pay_event(i), pay_ok) for i in range(warm + calls)]
            trade_nos = [json.loads(r[-1]["body"])["data"]["outTradeNo"] for r in pays]
            notify_events = [
                events.http_event("POST", "/pay/notify", fx.notify_body(no),
                                  {"content-type": "application/x-www-form-urlencoded; charset=utf-8"})
                for no in trade_nos
            ]
            notify_ok = lambda r: r["body"] == "success"  # noqa: E731
            notifies = [run(pay_notify, ev, notify_ok) for ev in notify_events]
    finally:
        botocore.client.BaseClient._make_api_call = original
        BotocoreStubber.__call__ = moto_call
        root.handlers = saved_handlers
        sink.close()
        os.environ.clear()
        os.environ.update(saved_env)
        config.reset()
        repository.reset()

    ms = lambda xs: [x * 1e3 for x in xs]  # noqa: E731
    figs = {}
    for name, rows in (("pay", pays[warm:]), ("pay_notify", notifies[warm:])):
        figs[name] = report.add(f"warm {name}: whole handler", "ms", ms([r[0] for r in rows]), "wall; moto, in process")
        report.add(f"warm {name}: inside DynamoDB calls", "ms", ms([r[1] for r in rows]), "wall; botocore + moto")
        figs[name + "_ours"] = report.add(f"warm {name}: outside DynamoDB (ours)", "ms", ms([r[0] - r[1] for r in rows]),
                                          "wall")
        figs[name + "_cpu"] = report.add(f"warm {name}: outside DynamoDB (ours, CPU)", "ms", ms([r[2] - r[3] for r in rows]), "CPU")
        figs[name + "_botocore_cpu"] = report.add(f"warm {name}: botocore's own share (CPU)", "ms",
                                                  ms([r[3] - r[5] for r in rows]), "DynamoDB calls without moto's work")
        figs[name + "_calls"] = report.add(f"warm {name}: DynamoDB calls", "n", [r[4] for r in rows])
    return figs


# --- hostile input: the worst parse cost found, per entry point --------------------------------

def hostile_figures(report: Report, fx: Fixture, repeats: int) -> Dict[str, Tuple[Figure, Figure]]:
    """Each entry point's parse step (before any storage) on tests/hostile.py's catalogue of long
    and pathological inputs, each filling its body limit: the worst CPU cost found beside a normal
    request's. Issue 11 #1: no input may cost more than milliseconds."""
    from tests import hostile  # the same catalogue the tests refuse, one by one

    parse = hostile.parsers(APP_ID, fx.alipay_keys.public_key)
    normal = hostile.normal_events(APP_ID, fx.alipay_keys.private_key)
    cases = hostile.all_cases(APP_ID, fx.alipay_keys.private_key)
    figs = {}
    for entry, step in parse.items():
        mine = [case for case in cases if case.entry == entry]
        usual = [hostile.cpu_seconds(lambda: step(normal[entry]), 5) * 1e3 for _ in range(repeats)]
        costs = [(hostile.cpu_seconds(lambda: step(case.event)), case) for case in mine]
        cost, worst = max(costs, key=lambda pair: pair[0])
        again = [hostile.cpu_seconds(lambda: step(worst.event)) * 1e3 for _ in range(repeats)]
        figs[entry] = (
            report.add(f"parse {entry}: a normal request", "ms", usual, "CPU"),
            report.add(f"parse {entry}: worst of {len(mine)} hostile inputs", "ms", again,
                       f"CPU; {worst.name} ({worst.size:,} chars)"),
        )
    return figs


# --- packages ----------------------------------------------------------------------------------

def serverless_package() -> Tuple[Optional[Path], str]:
    """Run the real packaging step into a temporary folder; (folder, "") or (None, why not)."""
    if not (ROOT / "node_modules" / ".bin" / "serverless").exists():
        return None, "node_modules not installed (make test or npm ci installs it)"
    out = Path(tempfile.mkdtemp(prefix="bench-package-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # No credentials at all, as tests/functional/test_package.py: packaging must not need AWS.
    env.update(AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_CONFIG_FILE=os.devnull, SLS_TELEMETRY_DISABLED="1")
    result = subprocess.run([shutil.which("npx") or "npx", "serverless", "package", "--stage", "bench", "--package", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        return None, "serverless package failed: " + (result.stdout + result.stderr)[-400:]
    return out, ""


def dist_size(name: str, with_deps: bool, seen: Optional[set] = None) -> int:
    """Installed bytes of a distribution (its RECORD's files), optionally with its dependencies."""
    from packaging.requirements import Requirement

    seen = set() if seen is None else seen
    key = name.lower().replace("_", "-")
    if key in seen:
        return 0
    seen.add(key)
    dist = metadata.distribution(name)
    total = sum(p.locate().stat().st_size for p in dist.files or () if p.locate().is_file())
    if with_deps:
        for spec in dist.requires or ():
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                total += dist_size(req.name, True, seen)
    return total


def package_figures(report: Report, run_package: bool) -> dict:
    import yaml

    figs = {}
    sdk_alone = dist_size("alipay-sdk-python", False) / 2**20
    figs["sdk"] = report.add("official SDK installed (alipay-sdk-python)", "MB", [sdk_alone], "unpacked, from the venv")
    report.add("  with its dependencies (pycryptodome, rsa, ...)", "MB", [dist_size("alipay-sdk-python", True) / 2**20])
    report.add("our runtime deps installed (cryptography, ...)", "MB", [dist_size("cryptography", True) / 2**20],
               "unpacked, from the venv")
    if not run_package:
        report.notes.append("packaging skipped (--no-package)")
        return figs
    folder, why = serverless_package()
    if folder is None:
        report.notes.append(why)
        return figs
    try:
        spec = yaml.safe_load((ROOT / "serverless.yml").read_text(encoding="utf-8"))
        functions = sorted(spec.get("functions") or {})
        zips = {p.stem: p.stat().st_size for p in folder.glob("*.zip")}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    figs["functions"] = [report.add(f"package: {name}.zip", "KB", [zips[name] / 1024]) for name in functions if name in zips]
    layers = {name: size for name, size in zips.items() if name not in functions}
    figs["layers"] = [report.add(f"package: layer {name}.zip", "MB", [size / 2**20]) for name, size in sorted(layers.items())]
    if not layers:
        report.notes.append("dependency layer: not built yet (serverless package made no layer zip)")
    return figs


# --- ratios ------------------------------------------------------------------------------------

def add_ratios(report: Report, crypto: dict, cold: dict, handlers: dict, packages: dict) -> None:
    for op, goal, limit in (("sign", "<= 1.1x", 1.1), ("verify", "<= 2x", 2.0)):
        openssl = crypto.get(f"ossl_{op}")
        if openssl is None:
            report.ratio(f"{op}: ours / openssl", "openssl absent", goal, None)
            continue
        best, med = _ratio(crypto[op], openssl)
        report.ratio(f"{op}: ours / openssl", f"{best:.2f}x best, {med:.2f}x median", goal, best <= limit)
        for part, label in (("rsa", "the RSA2 call alone"), ("floor", "the floor: unavoidable work only")):
            best, med = _ratio(crypto[f"{part}_{op}"], openssl)
            report.ratio(f"  ({label} / openssl)", f"{best:.2f}x best, {med:.2f}x median", "", None)
    best, med = _ratio(crypto["sdk"], crypto["sign"])
    report.ratio("sign: SDK / ours (speed-up)", f"{best:.0f}x best, {med:.0f}x median", ">= 50x", best >= 50)
    for ours, sdk, label in (("ours_src", "sdk_src", "cold start: ours / SDK, as on Lambda"),
                             ("ours", "sdk", "cold start: ours / SDK, .pyc cached")):
        best, med = _ratio(cold[ours], cold[sdk])
        report.ratio(label, f"{best:.2f}x best, {med:.2f}x median", "<= 0.5x", best <= 0.5)
    if handlers:
        fig = handlers["pay_notify_ours"]
        report.ratio("warm notify outside DynamoDB", f"{fig.median:.2f} ms median, {fig.max:.2f} max (wall)", "<= 2 ms",
                     fig.median <= 2)
    if packages.get("functions"):
        biggest = max(f.min for f in packages["functions"])
        report.ratio("largest function zip", f"{biggest:.1f} KB", "< 100 KB", biggest < 100)
    if packages.get("layers"):
        layer = max(f.min for f in packages["layers"])
        report.ratio("dependency layer zip", f"{layer:.2f} MB ({packages['sdk'].min / layer:.0f}x under the SDK)",
                     "< 10 MB", layer < 10)
    elif "functions" in packages:
        report.ratio("dependency layer zip", "not built yet", "< 10 MB", None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, short batches: proves the bench runs")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per figure (default 7, quick 1)")
    parser.add_argument("--no-package", action="store_true", help="skip `serverless package` (zip sizes)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 7)
    seconds = 0.05 if args.quick else 0.5
    handler_calls = 5 if args.quick else 200

    report = Report()
    fx = Fixture.create()
    print(f"bench: {repeats} repeats on {os.cpu_count()} cores (load average {os.getloadavg()[0]:.2f}), "
          f"python {sys.version.split()[0]}, {_openssl_version()}; cryptography {metadata.version('cryptography')} "
          f"({_cryptography_openssl()})", flush=True)
    crypto = crypto_figures(report, fx, repeats, seconds, openssl_seconds=1)
    cold = cold_start_figures(report, fx, max(repeats, 3) if not args.quick else 1)
    handlers = handler_figures(report, fx, handler_calls)
    memory.memory_figures(report, cold, handlers)
    hostile = hostile_figures(report, fx, repeats)
    packages = package_figures(report, not args.no_package)
    add_ratios(report, crypto, cold, handlers, packages)
    worst = max(pair[1].min for pair in hostile.values())
    report.ratio("worst hostile input, any entry point", f"{worst:.2f} ms CPU", "<= 10 ms", worst <= 10)
    report.notes.append(f"load average at the end: {os.getloadavg()[0]:.2f} (other work on this machine)")
    print()
    report.print()
    return 0


def _cryptography_openssl() -> str:
    from cryptography.hazmat.backends.openssl import backend

    return f"its own {backend.openssl_version_text()}"


def _openssl_version() -> str:
    exe = shutil.which("openssl")
    if exe is None:
        return "openssl absent"
    return subprocess.run([exe, "version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
