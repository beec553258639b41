"""shared/alipay/bill.py: Alipay's trade bill zip (GBK CSV, start/end marks, 合计 lines) parsed
into cents — and every malformed or hostile file refused with one clear error, in linear time."""
import io
import time
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local import bills
from shared.alipay import bill
from shared.alipay.bill import REFUND, TRADE, BillFormatError
from shared.alipay.gateway import GatewayError

DAY = "2026-12-01"
ACCOUNT = "2088000000000001"


def row(out_trade_no="ORDER_1", amount="1.10", kind="交易", received=None, request_no="", subject="商品"):
    return bills.Row(kind, "2026120122001400000000000001", out_trade_no, subject, f"{DAY} 10:00:00", f"{DAY} 10:00:05",
                     amount, received if received is not None else amount, request_no)


def zipped(detail: bytes, name="208800000000000120261201_业务明细.csv", extra=()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        info = bills._GbkName(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, detail)
        for member, content in extra:
            archive.writestr(member, content)
    return out.getvalue()


def detail(rows, **kwargs) -> str:
    return bills.detail_csv(rows, DAY, ACCOUNT, **kwargs)


def parse_text(text: str):
    return bill.parse_zip(zipped(text.encode("gbk")))


def test_a_bill_as_alipay_lays_it_out_is_read_in_cents():
    rows = [row("ORDER_1", "1.10"), row("ORDER_2", "100000000.00", subject="逗号, \"引号\" 和 ★"),
            row("ORDER_1", "1.10", "退款", "-0.10", "RF1")]
    parsed = bill.parse_zip(bills.bill_zip(rows, DAY, ACCOUNT))
    assert parsed.account == ACCOUNT
    assert [(line.kind, line.out_trade_no, line.order_cents, line.received_cents, line.out_request_no) for line in parsed.lines] == [
        (TRADE, "ORDER_1", 110, 110, None), (TRADE, "ORDER_2", 10_000_000_000, 10_000_000_000, None),
        (REFUND, "ORDER_1", 110, -10, "RF1"),
    ]
    assert parsed.lines[2].refund_cents == 10 and parsed.lines[0].finished_at == f"{DAY} 10:00:05"
    assert parsed.totals[TRADE] == bill.Totals(2, 10_000_000_110) and parsed.totals[REFUND] == bill.Totals(1, -10)


def test_an_empty_day_is_a_bill_with_no_lines():
    parsed = bill.parse_zip(bills.bill_zip([], DAY, ACCOUNT))
    assert parsed.lines == [] and parsed.totals[TRADE] == bill.Totals(0, 0)


def test_columns_are_found_by_name_in_any_order_with_half_width_brackets_and_backticks():
    header = "商户订单号,完成时间,业务类型,订单金额(元),支付宝交易号,商家实收(元),退款批次号/请求号"
    text = "\r\n".join([
        f"#账号：[{ACCOUNT}]", "#---业务明细列表---", header,
        "`ORDER_9\t,2026-12-01 23:59:59\t,交易\t,5\t,`2026120122001\t,5.00\t,\t",
        "#---业务明细列表结束---", "#交易合计：1笔，商家实收共5.00元，商家优惠共0.00元", "#退款合计：0笔，商家实收退款共0.00元",
    ])
    [line] = parse_text(text).lines
    assert (line.out_trade_no, line.trade_no, line.order_cents, line.finished_at) == ("ORDER_9", "2026120122001", 500, "2026-12-01 23:59:59")


def test_gbk_names_are_read_and_the_summary_file_is_not_the_detail():
    data = bills.bill_zip([row()], DAY, ACCOUNT)
    names = [bill.entry_name(info) for info in zipfile.ZipFile(io.BytesIO(data)).infolist()]
    assert names == [f"{ACCOUNT}20261201_业务明细.csv", f"{ACCOUNT}20261201_业务明细(汇总).csv"]
    assert all(not info.flag_bits & 0x800 for info in zipfile.ZipFile(io.BytesIO(data)).infolist())  # as Alipay: no UTF-8 flag


GOOD = detail([row("ORDER_1", "1.10"), row("ORDER_1", "1.10", "退款", "-1.10", "RF1")])


@pytest.mark.parametrize("text, message", [
    (GOOD[: GOOD.index("#-----------------------------------------业务明细列表结束")], "truncated"),
    (GOOD.replace("业务明细列表结束", "业务明细列表完"), "unexpected '#' line"),
    (GOOD[: GOOD.index("#-")], "no '业务明细列表' line"),
    (GOOD.replace("#交易合计：1笔", "#交易合计：2笔"), "#交易合计 says 2 rows"),
    (GOOD.replace("商家实收：1.10元", "商家实收：1.11元"), "#交易合计 says 1 rows, 111 cents"),
    ("\r\n".join(l for l in GOOD.split("\r\n") if not l.startswith("#退款合计")), "no '#退款合计' line"),
    (GOOD.replace("订单金额（元）", "金额"), "'订单金额(元)' columns, not one"),
    (GOOD.replace("商户订单号", "支付宝交易号"), "'支付宝交易号' columns, not one"),
    (GOOD.replace("1.10\t", "1.1.0\t", 1), "is not an amount"),
    (GOOD.replace("1.10\t", "1e3\t", 1), "is not an amount"),
    (GOOD.replace("1.10\t", "NaN\t", 1), "is not an amount"),
    (GOOD.replace("1.10\t", "1.001\t", 1), "is not an amount"),
    (GOOD.replace("1.10\t", "100000000.01\t", 1), "out of range"),
    (GOOD.replace("交易\t", "冻结\t", 1), "unknown 业务类型"),
    (GOOD.replace("-1.10\t", "1.10\t", 1), "商家实收 is not negative"),
    (GOOD.replace("ORDER_1\t", "\t", 1), "商户订单号 missing"),
    (GOOD.replace("ORDER_1\t", "O" * 65 + "\t", 1), "longer than 64"),
    (GOOD.replace(f"{DAY} 10:00:05", "2026-02-30 10:00:05", 1), "完成时间"),
    (GOOD.replace("RF1\t", "RF1\t,extra", 1), "fields, the header has 25"),
    (GOOD.replace("ORDER_1\t", '"ORDER_1\t', 1), "line 6"),
    (GOOD.replace("#-----------------------------------------业务明细列表结束", "#comment\r\n#---业务明细列表结束"), "unexpected '#' line"),
    (GOOD.replace("ORDER_1\t", "X" * 5000, 1), "longer than 4096 characters"),
])
def test_malformed_bills_are_refused_with_a_clear_message(text, message):
    with pytest.raises(BillFormatError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        parse_text(text)


@pytest.mark.parametrize("data, message", [
    (b"", "not a zip"),
    (b"<html>502</html>", "not a zip"),
    (zipped(GOOD.encode("gbk"))[:-30], "not a zip"),
    (zipped(GOOD.encode("utf-8")), "not GBK text"),
    (zipped(GOOD.encode("gbk"), name="其他.csv"), "0 业务明细 CSV files"),
    (zipped(GOOD.encode("gbk"), extra=[("x_业务明细.csv", b"")]), "2 业务明细 CSV files"),
    (zipped(GOOD.encode("gbk"), extra=[(f"f{n}.txt", b"") for n in range(16)]), "more than 16"),
])
def test_broken_zips_are_refused(data, message):
    with pytest.raises(BillFormatError, match=message):
        bill.parse_zip(data)


def test_a_zip_bomb_is_refused_before_it_is_inflated(monkeypatch):
    monkeypatch.setattr(bill, "MAX_DETAIL_BYTES", 1024 * 1024)
    bomb = zipped(b"#" * (8 * 1024 * 1024))  # 8 MB of '#' deflates to about 8 KB
    assert len(bomb) < 64 * 1024
    with pytest.raises(BillFormatError, match="inflates to 8388608 bytes"):
        bill.parse_zip(bomb)


def test_an_oversized_download_is_refused():
    with pytest.raises(BillFormatError, match="larger than"):
        bill.parse_zip(b"\0" * (bill.MAX_BILL_BYTES + 1))


def test_a_lying_size_in_the_zip_header_is_caught_by_the_crc_not_read_beyond():
    data = bytearray(zipped(GOOD.encode("gbk")))
    data[data.rindex(b"PK\x01\x02") + 24: data.rindex(b"PK\x01\x02") + 28] = (100).to_bytes(4, "little")  # central dir: file_size
    with pytest.raises(BillFormatError):
        bill.parse_zip(bytes(data))


def test_parsing_is_linear_in_the_size_of_the_bill():
    """Pathological inputs (long runs of quotes, commas, tabs; many rows) take time in proportion."""
    def seconds(n):
        rows = [row(f"ORDER_{i}", "1.00", subject='"' * 40 + "," * 40 + "\t" * 40) for i in range(n)]
        data = bills.bill_zip(rows, DAY, ACCOUNT)
        start = time.process_time()
        assert len(bill.parse_zip(data).lines) == n
        return time.process_time() - start

    small, large = seconds(2_000), seconds(20_000)
    assert large < 25 * max(small, 0.01)  # 10x the rows: about 10x the time, never quadratic


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_any_bytes_as_the_detail_give_a_bill_or_the_one_error(data):
    try:
        bill.parse_zip(zipped(data))
    except BillFormatError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(',"\t\r\n#`-.0123456789交易退款合计笔元：') + ["业务明细列表", "业务明细列表结束"]), max_size=300).map("".join))
def test_any_text_after_the_header_gives_a_bill_or_the_one_error(tail):
    text = GOOD[: GOOD.index("2026120122001")] + tail
    try:
        parse_text(text.encode("gbk", "replace").decode("gbk"))
    except BillFormatError:
        pass


def test_the_download_is_https_or_loopback_and_bounded():
    seen = []

    def fetch(url, timeout, max_bytes):
        seen.append((url, timeout, max_bytes))
        return b"zip"

    assert bill.download("https://dwbillcenter.alipay.com/downloadBillFile.resource?token=x", fetch) == b"zip"
    bill.download("http://dwbillcenter.alipay.com/downloadBillFile.resource?token=y", fetch)  # Alipay's documented form
    bill.download("http://127.0.0.1:3123/sandbox/bills/download?token=z", fetch)
    assert [url for url, _, _ in seen] == [
        "https://dwbillcenter.alipay.com/downloadBillFile.resource?token=x",
        "https://dwbillcenter.alipay.com/downloadBillFile.resource?token=y",
        "http://127.0.0.1:3123/sandbox/bills/download?token=z",
    ]
    assert {(timeout, max_bytes) for _, timeout, max_bytes in seen} == {(bill.DOWNLOAD_TIMEOUT, bill.MAX_BILL_BYTES)}
    for bad in ("ftp://dwbillcenter.alipay.com/x", "file:///etc/passwd", "https:///nohost", "javascript:alert(1)"):
        with pytest.raises(ValueError):
            bill.download(bad, fetch)


def test_http_get_stops_at_the_size_bound(monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Big(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 300_000)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Big)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/bill?token=1"
        assert len(bill.download(url, max_bytes=300_000)) == 300_000
        with pytest.raises(GatewayError, match="larger than 100000 bytes"):
            bill.download(url, max_bytes=100_000)
    finally:
        server.shutdown()
