"""The emulator's daily trade bill: ``alipay.data.dataservice.bill.downloadurl.query`` and the
download behind it, generated from the ledger in Alipay's format (a zip of two GBK CSV files
whose names are GBK too, tab-padded values, the start/end marks and the 合计 lines).

- Every trade paid on the day (``gmt_payment``) is a 交易 row; every refund made on the day
  (``gmt_refund_pay``) a 退款 row with a negative 商家实收 and its out_request_no.
- The URL answered is valid for 30 s, like Alipay's, and serves the bill as it is at download.
- For tests, discrepancies can be planted per day (``POST /sandbox/bills/plant``, see
  ``Plants``): rows left out, amounts changed, rows added, or a damaged file.
- Alipay only publishes a day once it is over; the emulator also serves today's bill so far, so
  ``make invoke FUNCTION=bill_reconcile EVENT='{"date": "<today>"}'`` works on ``make run``.
"""
from __future__ import annotations

import csv
import io
import re
import secrets
import threading
import time
import zipfile
from dataclasses import dataclass, field
from datetime import date as Date, datetime
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from shared.domain import clock, money

from local.sandbox import GatewayRequest, Sandbox, business, gateway_method, invalid, refunds_of
from local.ledger import Trade

URL_TTL_SECONDS = 30.0
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
DAMAGES = ("truncate", "bad_total", "not_gbk", "not_zip")

HEADER = (
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称", "操作员",
    "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）",
    "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号",
    "服务费（元）", "分润（元）", "备注",
)
DASHES = "-" * 41


@dataclass(frozen=True)
class Row:
    """One detail row as the emulator writes it (amounts as Alipay's two-decimal strings)."""

    kind: str  # "交易" or "退款"
    trade_no: str
    out_trade_no: str
    subject: str
    created: str
    finished: str
    order_amount: str
    received: str  # negative for refunds
    out_request_no: str = ""
    buyer: str = "buy***@sandbox.com"

    def values(self) -> List[str]:
        empty = ""
        return [
            self.trade_no, self.out_trade_no, self.kind, self.subject, self.created, self.finished, empty, empty, empty,
            empty, self.buyer, self.order_amount, self.received, "0.00", "0.00", "0.00", "0.00", "0.00", empty, "0.00",
            "0.00", self.out_request_no, "0.00", "0.00", empty,
        ]


@dataclass
class Plants:
    """Discrepancies to plant in one day's bill (tests and demos), as ``POST /sandbox/bills/plant``
    takes them: ``{"date": "YYYY-MM-DD", "omit": [out_trade_no…], "amounts": {out_trade_no: "9.99"},
    "extra": [{"out_trade_no", "total_amount", "refund_amount"?, "out_request_no"?}], "damage": "truncate"}``.

    ``omit`` leaves a trade's rows out; ``amounts`` bills a trade at another 订单金额/商家实收;
    ``extra`` adds a paid trade (or, with ``refund_amount``, a refund) that the ledger does not
    have; ``damage`` serves a broken file (one of ``DAMAGES``).
    """

    omit: Set[str] = field(default_factory=set)
    amounts: Dict[str, str] = field(default_factory=dict)
    extra: List[Dict[str, str]] = field(default_factory=list)
    damage: Optional[str] = None

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> "Plants":
        omit, amounts, extra, damage = spec.get("omit", []), spec.get("amounts", {}), spec.get("extra", []), spec.get("damage")
        if not isinstance(omit, list) or not all(isinstance(o, str) for o in omit):
            raise ValueError("omit must be a list of out_trade_no strings")
        if not isinstance(amounts, dict) or not all(isinstance(v, str) for v in amounts.values()):
            raise ValueError("amounts must map out_trade_no to an amount string")
        for value in amounts.values():
            money.yuan_to_cents(value, field="amounts")
        if not isinstance(extra, list) or not all(isinstance(e, dict) and isinstance(e.get("out_trade_no"), str) for e in extra):
            raise ValueError("extra must be a list of {out_trade_no, total_amount, refund_amount?, out_request_no?}")
        for row in extra:
            money.yuan_to_cents(row.get("total_amount"), field="total_amount")
            if "refund_amount" in row:
                money.yuan_to_cents(row["refund_amount"], field="refund_amount")
        if damage is not None and damage not in DAMAGES:
            raise ValueError(f"damage must be one of {', '.join(DAMAGES)}")
        return cls(set(omit), dict(amounts), [dict(e) for e in extra], damage)


class BillDesk:
    """The emulator's bill state: planted discrepancies per day and the download tokens handed out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.plants: Dict[str, Plants] = {}
        self._tokens: Dict[str, Tuple[str, float]] = {}

    def plant(self, day: str, plants: Plants) -> None:
        with self._lock:
            self.plants[day] = plants

    def issue(self, day: str) -> str:
        token = secrets.token_urlsafe(16)
        with self._lock:
            now = time.monotonic()
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (day, now + URL_TTL_SECONDS)
        return token

    def redeem(self, token: str) -> Optional[str]:
        with self._lock:
            day, until = self._tokens.get(token, ("", 0.0))
        return day if until > time.monotonic() else None


def desk(sandbox: Sandbox) -> BillDesk:
    return sandbox.extensions.setdefault("bills", BillDesk())


# --- the rows of a day, from the ledger ---------------------------------------------------------

def ledger_rows(trades: Iterable[Trade], day: str) -> List[Row]:
    """The day's 交易 and 退款 rows, in the order they happened."""
    rows: List[Tuple[str, Row]] = []
    for trade in trades:
        if trade.gmt_payment and trade.gmt_payment.startswith(day):
            rows.append((trade.gmt_payment, Row(
                "交易", trade.trade_no, trade.out_trade_no, trade.subject, trade.gmt_create, trade.gmt_payment,
                trade.total_amount, trade.total_amount, buyer=trade.buyer_logon_id,
            )))
        for request_no, refund in refunds_of(trade).items():
            if refund["gmt_refund_pay"].startswith(day):
                rows.append((refund["gmt_refund_pay"], Row(
                    "退款", trade.trade_no, trade.out_trade_no, trade.subject, trade.gmt_create, refund["gmt_refund_pay"],
                    trade.total_amount, "-" + refund["refund_amount"], request_no, trade.buyer_logon_id,
                )))
    return [row for _, row in sorted(rows, key=lambda pair: pair[0])]


def planted(rows: List[Row], plants: Optional[Plants], day: str, serial: Iterable[int]) -> List[Row]:
    """``rows`` with a day's plants applied."""
    if plants is None:
        return rows
    out = []
    for row in rows:
        if row.out_trade_no in plants.omit:
            continue
        amount = plants.amounts.get(row.out_trade_no)
        if amount is not None:
            row = Row(**{**row.__dict__, "order_amount": amount, "received": amount if row.kind == "交易" else row.received})
        out.append(row)
    numbers = iter(serial)
    at = f"{day} 12:00:00"
    for extra in plants.extra:
        trade_no = day.replace("-", "") + f"{29990000000000000000 + next(numbers):020d}"
        total = money.cents_to_yuan(money.yuan_to_cents(extra["total_amount"]))
        if "refund_amount" in extra:
            refund = money.cents_to_yuan(money.yuan_to_cents(extra["refund_amount"]))
            out.append(Row("退款", trade_no, extra["out_trade_no"], "planted", at, at, total, "-" + refund,
                           extra.get("out_request_no", "")))
        else:
            out.append(Row("交易", trade_no, extra["out_trade_no"], "planted", at, at, total, total))
    return out


# --- Alipay's file format -----------------------------------------------------------------------

def _cn_time(day: str, hms: str = "00:00:00") -> str:
    y, m, d = day.split("-")
    return f"{y}年{m}月{d}日 {hms}"


def detail_csv(rows: List[Row], day: str, account: str, exported_at: Optional[datetime] = None) -> str:
    """The 业务明细 CSV text, as Alipay lays it out (see shared/alipay/bill.py)."""
    end = Date.fromisoformat(day).toordinal() + 1
    out = io.StringIO()
    out.write("#支付宝业务明细查询\r\n")
    out.write(f"#账号：[{account}]\r\n")
    out.write(f"#起始日期：[{_cn_time(day)}]   终止日期：[{_cn_time(Date.fromordinal(end).isoformat())}]\r\n")
    out.write(f"#{DASHES}业务明细列表{DASHES}\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    totals = {"交易": [0, 0], "退款": [0, 0]}
    for row in rows:
        writer.writerow([value + "\t" for value in row.values()])
        totals[row.kind][0] += 1
        totals[row.kind][1] += _signed_cents(row.received)
    out.write(f"#{DASHES}业务明细列表结束{DASHES}\r\n")
    for kind in ("交易", "退款"):
        count, cents = totals[kind]
        out.write(f"#{kind}合计：{count}笔，商家实收：{_signed_yuan(cents)}元，商家优惠：0.00元\r\n")
    stamp = (exported_at or clock.now()).astimezone(clock.SHANGHAI)
    out.write(f"#导出时间：[{stamp.strftime('%Y年%m月%d日 %H:%M:%S')}]\r\n")
    return out.getvalue()


def summary_csv(rows: List[Row], day: str, account: str) -> str:
    """The 业务明细(汇总) CSV: one line per kind (what a finance team glances at first)."""
    paid = [r for r in rows if r.kind == "交易"]
    refunded = [r for r in rows if r.kind == "退款"]
    return (
        "#支付宝业务汇总查询\r\n"
        f"#账号：[{account}]\r\n"
        f"#起始日期：[{_cn_time(day)}]\r\n"
        f"#{DASHES}业务汇总列表{DASHES}\r\n"
        "门店编号,门店名称,交易订单总笔数,退款订单总笔数,已收入金额（元）,已退款金额（元）\r\n"
        f"合计,,{len(paid)},{len(refunded)},{_signed_yuan(sum(_signed_cents(r.received) for r in paid))},"
        f"{_signed_yuan(sum(_signed_cents(r.received) for r in refunded))}\r\n"
        f"#{DASHES}业务汇总列表结束{DASHES}\r\n"
    )


def _signed_cents(text: str) -> int:
    return -money.yuan_to_cents(text[1:]) if text.startswith("-") else money.yuan_to_cents(text)


def _signed_yuan(cents: int) -> str:
    return ("-" if cents < 0 else "") + (money.cents_to_yuan(abs(cents)) if cents else "0.00")


class _GbkName(zipfile.ZipInfo):
    """A member named in GBK without zip's UTF-8 flag, as Alipay's files are."""

    def _encodeFilenameFlags(self):  # noqa: N802 - zipfile's own hook
        return self.filename.encode("gbk"), self.flag_bits


def bill_zip(rows: List[Row], day: str, account: str, damage: Optional[str] = None) -> bytes:
    """The zip Alipay serves behind bill_download_url (``damage``: a planted broken file)."""
    if damage == "not_zip":
        return b"<html>the bill is being generated</html>"
    detail = detail_csv(rows, day, account)
    if damage == "truncate":
        detail = detail[: detail.index("#" + DASHES + "业务明细列表结束")]
    elif damage == "bad_total":
        detail = re.sub(r"#交易合计：(\d+)笔", lambda m: f"#交易合计：{int(m.group(1)) + 1}笔", detail)
    data = detail.encode("gbk")
    if damage == "not_gbk":
        data = data.replace("交易".encode("gbk"), b"\xff\xfe", 1)
    stem = f"{account}{day.replace('-', '')}"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in ((f"{stem}_业务明细.csv", data), (f"{stem}_业务明细(汇总).csv", summary_csv(rows, day, account).encode("gbk"))):
            info = _GbkName(name, date_time=time.localtime()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return out.getvalue()


def day_bill(sandbox: Sandbox, day: str) -> bytes:
    """The day's bill zip as the ledger (and the plants) have it now."""
    plants = desk(sandbox).plants.get(day)
    rows = planted(ledger_rows(sandbox.ledger.trades(), day), plants, day, range(1, 1 << 30))
    return bill_zip(rows, day, sandbox.seller_id, plants.damage if plants else None)


# --- the gateway method and the routes ------------------------------------------------------------

@gateway_method("alipay.data.dataservice.bill.downloadurl.query")
def bill_downloadurl_query(sandbox: Sandbox, request: GatewayRequest) -> Dict[str, Any]:
    """``bill_type`` trade, ``bill_date`` a day up to today (Asia/Shanghai); a later day has no bill."""
    biz = request.biz
    if biz.get("bill_type") != "trade":
        raise invalid("isv.invalid-bill-type", "账单类型不支持(emulator: trade only)")
    day = biz.get("bill_date")
    if not isinstance(day, str) or not DATE_RE.fullmatch(day):
        raise invalid("isv.invalid-bill-date", "账单时间格式不正确(emulator: yyyy-MM-dd only)")
    try:
        Date.fromisoformat(day)
    except ValueError:
        raise invalid("isv.invalid-bill-date", "账单时间格式不正确") from None
    if day > clock.now().date().isoformat():
        raise business("isp.bill_not_exist", "账单不存在")
    token = desk(sandbox).issue(day)
    query = f"bizType=trade&userId={sandbox.seller_id}&fileType=csv.zip&bizDates={day.replace('-', '')}&token={token}"
    return {"bill_download_url": f"{sandbox.base_url}/bills/download?{query}"}


def route(sandbox: Sandbox, command: str, path: str, args: Mapping[str, str], body: Optional[bytes]) -> Tuple[int, str, bytes]:
    """``/sandbox/bills/…``: the download (``GET download?token=``), a day's bill for a human
    (``GET /sandbox/bills/YYYY-MM-DD``) and the plants (``POST``/``DELETE /sandbox/bills/plant``)."""
    import json  # noqa: PLC0415

    def answer(status: int, payload: Any) -> Tuple[int, str, bytes]:
        return status, "application/json; charset=utf-8", json.dumps(payload, ensure_ascii=False).encode("utf-8")

    if path == "/bills/download" and command == "GET":
        day = desk(sandbox).redeem(args.get("token", ""))
        if day is None:  # Alipay's URL lapses after 30 s
            return 403, "text/plain; charset=utf-8", b"the download link is invalid or has expired"
        return 200, "application/zip", day_bill(sandbox, day)
    if path == "/bills/plant" and command in ("POST", "DELETE"):
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict):
                raise ValueError("the body must be a JSON object")
            day = spec.get("date")
            if not isinstance(day, str) or not DATE_RE.fullmatch(day):
                raise ValueError("date must be YYYY-MM-DD")
            plants = Plants() if command == "DELETE" else Plants.from_json(spec)
        except (ValueError, money.InvalidAmount) as exc:
            return answer(400, {"message": str(exc)})
        desk(sandbox).plant(day, plants)
        return answer(200, {"date": day, "omit": sorted(plants.omit), "amounts": plants.amounts, "extra": plants.extra,
                            "damage": plants.damage})
    day = path[len("/bills/"):]
    if command == "GET" and DATE_RE.fullmatch(day):
        return 200, "application/zip", day_bill(sandbox, day)
    return answer(404, {"message": "Not Found"})
