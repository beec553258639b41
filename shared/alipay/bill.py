"""Alipay's daily trade bill (``alipay.data.dataservice.bill.downloadurl.query``, ``bill_type=trade``).

The gateway answers a short-lived ``bill_download_url``; behind it is a zip of GBK CSV files: the
detail (``<pid>_<yyyymmdd>_业务明细.csv``) and a summary (``…_业务明细(汇总).csv``). The detail is

    #支付宝业务明细查询
    #账号：[2088…]
    #起始日期：[2026年12月01日 00:00:00]   终止日期：[2026年12月02日 00:00:00]
    #-----------------------------------------业务明细列表----------------------------------------
    支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,…,订单金额（元）,商家实收（元）,…,退款批次号/请求号,…
    2026120122001…\t,ORDER_…\t,交易\t,…
    #-----------------------------------------业务明细列表结束------------------------------------
    #交易合计：2笔，商家实收：3.01元，商家优惠：0.00元
    #退款合计：1笔，商家实收：-1.00元，商家优惠：0.00元
    #导出时间：[2026年12月02日 09:04:52]

Columns are found by name (Alipay says their order may change); values carry padding tabs.

Reading is bounded before it starts and linear: the download has a byte cap and one deadline,
the zip at most ``MAX_ENTRIES`` members and the detail ``MAX_DETAIL_BYTES`` once inflated, every
line at most ``MAX_LINE_CHARS``, and the decoder is strict. The two 合计 lines must agree with the
rows (count and cents), so a truncated or altered file is refused (``BillFormatError``) rather
than half-matched: a missing row would otherwise read as "paid here, absent from Alipay's bill".
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

from ..domain import clock
from .gateway import LOOPBACK_HOSTS, check_url, http_get

TRADE = "trade"  # 业务类型 交易: a payment
REFUND = "refund"  # 业务类型 退款
BUSINESS_TYPES = {"交易": TRADE, "退款": REFUND}

CHARSET = "gb18030"  # a superset of GBK that decodes every GBK byte sequence the same way
MAX_BILL_BYTES = 64 * 1024 * 1024  # the zip as downloaded
MAX_DETAIL_BYTES = 256 * 1024 * 1024  # the detail CSV once inflated (about 2.5 KB a line for 100,000)
MAX_ENTRIES = 16
MAX_LINE_CHARS = 4096
DOWNLOAD_TIMEOUT = 60.0  # seconds for the whole download; the URL itself is valid for about 30
MAX_CENTS = 10_000_000_000  # Alipay's 100,000,000.00 yuan, the most one line can hold
MAX_TOTAL_CENTS = 10 ** 17  # a 合计 line: the sum of a day's lines

START_MARK = "业务明细列表"
END_MARK = "业务明细列表结束"

# The columns read, by header name (full- or half-width brackets accepted).
COLUMNS = {
    "trade_no": "支付宝交易号",
    "out_trade_no": "商户订单号",
    "business_type": "业务类型",
    "finished_at": "完成时间",
    "order_amount": "订单金额(元)",
    "received": "商家实收(元)",
    "out_request_no": "退款批次号/请求号",
}

_AMOUNT = re.compile(r"(-?)(\d{1,16})(?:\.(\d{1,2}))?")
_TOTAL = re.compile(r"#(交易|退款)合计[：:]\s*(\d{1,9})笔[，,]\s*商家实收(?:退款)?共?[：:]?\s*(-?[\d.]{1,20})元")
_ACCOUNT = re.compile(r"#账号[：:]\s*\[(\d{1,32})\]")


class BillFormatError(ValueError):
    """The file is not a well-formed Alipay trade bill; nothing was matched against it."""


@dataclass(frozen=True)
class BillLine:
    """One row of the detail: a payment (``kind == TRADE``) or a refund of the trade."""

    kind: str
    trade_no: str
    out_trade_no: str
    order_cents: int  # 订单金额: the trade's total (also on refund rows)
    received_cents: int  # 商家实收: signed, negative on refund rows
    finished_at: str  # 完成时间, Asia/Shanghai wall-clock ``YYYY-MM-DD HH:MM:SS``
    out_request_no: Optional[str] = None  # refunds: 退款批次号/请求号
    row: int = 0  # the line number in the detail file, for the report

    @property
    def refund_cents(self) -> int:
        return -self.received_cents


@dataclass(frozen=True)
class Totals:
    count: int
    cents: int


@dataclass
class Bill:
    """The day's detail rows, with the summary lines they were checked against."""

    lines: List[BillLine] = field(default_factory=list)
    account: Optional[str] = None
    totals: Dict[str, Totals] = field(default_factory=dict)

    def of_kind(self, kind: str) -> Iterator[BillLine]:
        return (line for line in self.lines if line.kind == kind)


def cents(text: str, what: str, maximum: int = MAX_CENTS) -> int:
    """A bill amount (``"12.30"``, ``"-1.00"``, ``"5"``) as signed integer cents, no float."""
    match = _AMOUNT.fullmatch(text) if len(text) <= 24 else None
    if not match:
        raise BillFormatError(f"{what}: {text[:24]!r} is not an amount")
    sign, whole, frac = match.groups()
    value = int(whole) * 100 + int((frac or "0").ljust(2, "0"))
    if value > maximum:
        raise BillFormatError(f"{what}: {text[:24]!r} is out of range")
    return -value if sign else value


def _clean(value: str) -> str:
    """Alipay pads every value with tabs (and some exports prefix a backtick against Excel)."""
    return value.strip(" \t\r\n").lstrip("`")


def _header_name(value: str) -> str:
    return _clean(value).replace("（", "(").replace("）", ")")


def _lines(stream: io.TextIOBase) -> Iterator[Tuple[int, str]]:
    """Physical lines, each bounded before it is used."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
            raise BillFormatError(f"line {number} is longer than {MAX_LINE_CHARS} characters")
        yield number, line.rstrip("\r\n")


def parse_detail(stream: io.TextIOBase) -> Bill:
    """Parse the detail CSV (already decoded); see the module docstring for its shape."""
    bill = Bill()
    lines = _lines(stream)
    for number, line in lines:  # the header block, up to the start mark
        if (match := _ACCOUNT.match(line)) is not None:
            bill.account = match.group(1)
        if line.startswith("#") and START_MARK in line and END_MARK not in line:
            break
    else:
        raise BillFormatError(f"no '{START_MARK}' line: not an Alipay trade bill")
    try:
        number, header_line = next(lines)
    except StopIteration:
        raise BillFormatError("the bill ends after its start mark") from None
    header = [_header_name(name) for name in next(csv.reader([header_line]))]
    index: Dict[str, int] = {}
    for key, name in COLUMNS.items():
        if header.count(name) != 1:
            raise BillFormatError(f"the header has {header.count(name)} '{name}' columns, not one")
        index[key] = header.index(name)
    width = len(header)

    ended = False
    for number, line in lines:
        if line.startswith("#"):
            if END_MARK in line:
                ended = True
                break
            raise BillFormatError(f"line {number}: unexpected '#' line inside the detail")
        if not line.strip(" \t,"):
            continue
        try:
            values = next(csv.reader([line], strict=True))
        except csv.Error as exc:
            raise BillFormatError(f"line {number}: {exc}") from None
        if len(values) != width:
            raise BillFormatError(f"line {number}: {len(values)} fields, the header has {width}")
        bill.lines.append(_line(number, [_clean(v) for v in values], index))
    if not ended:
        raise BillFormatError(f"no '{END_MARK}' line: the bill is truncated")
    for number, line in lines:
        if (match := _TOTAL.match(line)) is not None:
            kind = BUSINESS_TYPES[match.group(1)]
            bill.totals[kind] = Totals(int(match.group(2)), cents(match.group(3), f"line {number} 合计", MAX_TOTAL_CENTS))
    _check_totals(bill)
    return bill


def _line(number: int, values: List[str], index: Dict[str, int]) -> BillLine:
    business_type = values[index["business_type"]]
    kind = BUSINESS_TYPES.get(business_type)
    if kind is None:
        raise BillFormatError(f"line {number}: unknown 业务类型 {business_type[:16]!r}")
    out_trade_no = values[index["out_trade_no"]]
    if not out_trade_no or len(out_trade_no) > 64:
        raise BillFormatError(f"line {number}: 商户订单号 missing or longer than 64 characters")
    trade_no = values[index["trade_no"]]
    if len(trade_no) > 64:
        raise BillFormatError(f"line {number}: 支付宝交易号 longer than 64 characters")
    finished_at = values[index["finished_at"]]
    try:
        clock.parse_alipay_time(finished_at)
    except ValueError:
        raise BillFormatError(f"line {number}: 完成时间 {finished_at[:24]!r} is not 'YYYY-MM-DD HH:MM:SS'") from None
    order_cents = cents(values[index["order_amount"]], f"line {number} 订单金额")
    received = cents(values[index["received"]], f"line {number} 商家实收")
    request_no = values[index["out_request_no"]] or None
    if kind == REFUND and received >= 0:
        raise BillFormatError(f"line {number}: a refund whose 商家实收 is not negative")
    if kind == TRADE and (order_cents <= 0 or received < 0):
        raise BillFormatError(f"line {number}: a payment with a negative or zero amount")
    if request_no is not None and len(request_no) > 64:
        raise BillFormatError(f"line {number}: 退款批次号/请求号 longer than 64 characters")
    return BillLine(kind, trade_no, out_trade_no, order_cents, received, finished_at, request_no, number)


def _check_totals(bill: Bill) -> None:
    for kind, label in ((TRADE, "交易合计"), (REFUND, "退款合计")):
        stated = bill.totals.get(kind)
        if stated is None:
            raise BillFormatError(f"no '#{label}' line")
        rows = [line.received_cents for line in bill.of_kind(kind)]
        if stated != Totals(len(rows), sum(rows)):
            raise BillFormatError(
                f"#{label} says {stated.count} rows, {stated.cents} cents; the detail has {len(rows)}, {sum(rows)}"
            )


# --- the download ------------------------------------------------------------------------------

Fetch = Callable[[str, float, int], bytes]  # (url, timeout, max_bytes) -> body, as gateway.http_get


def download_url(url: str) -> str:
    """The URL to fetch: https anywhere; Alipay's documented ``http://dwbillcenter.alipay.com/…``
    is fetched over https instead (the same host serves it), plain http only on the loopback."""
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        url = parts._replace(scheme="https").geturl()
    return check_url(url)


def download(url: str, fetch: Optional[Fetch] = None, timeout: float = DOWNLOAD_TIMEOUT, max_bytes: int = MAX_BILL_BYTES) -> bytes:
    """The bill zip behind ``bill_download_url``: one deadline, at most ``max_bytes``
    (``GatewayError`` otherwise, from the same HTTP client as the gateway's)."""
    return (fetch or http_get)(download_url(url), timeout, max_bytes)


# --- the zip -----------------------------------------------------------------------------------

def entry_name(info: zipfile.ZipInfo) -> str:
    """A member's name: Alipay writes GBK names without zip's UTF-8 flag (Python reads them as cp437)."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode(CHARSET)
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def parse_zip(data: bytes) -> Bill:
    """The detail CSV of a downloaded bill zip, parsed."""
    if len(data) > MAX_BILL_BYTES:
        raise BillFormatError(f"the bill is larger than {MAX_BILL_BYTES} bytes")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise BillFormatError(f"not a zip: {exc}") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ENTRIES:
            raise BillFormatError(f"the zip has {len(members)} members, more than {MAX_ENTRIES}")
        details = [
            info for info in members
            if entry_name(info).endswith(".csv") and "业务明细" in entry_name(info) and "汇总" not in entry_name(info)
        ]
        if len(details) != 1:
            raise BillFormatError(f"the zip has {len(details)} 业务明细 CSV files, not one")
        info = details[0]
        if info.file_size > MAX_DETAIL_BYTES:  # zipfile never inflates beyond the declared size
            raise BillFormatError(f"the detail inflates to {info.file_size} bytes, more than {MAX_DETAIL_BYTES}")
        try:
            with archive.open(info) as raw:
                return parse_detail(io.TextIOWrapper(raw, encoding=CHARSET, errors="strict", newline=""))
        except UnicodeDecodeError as exc:
            raise BillFormatError(f"the detail is not GBK text: {exc.reason} at byte {exc.start}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise BillFormatError(f"the zip member cannot be read: {exc}") from None
