"""shared/alipay/urlcode.py is urllib's percent-coding, only faster: held to urllib for any input."""
from unittest import mock
from urllib.parse import quote_plus, unquote_to_bytes

from hypothesis import example, given, settings, strategies as st

from shared.alipay import urlcode

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
gbk_texts = st.text(st.sampled_from("数据恢复产品订单描述 aZ09-_.~+/=%&?#中文"), max_size=30)
form_bytes = st.lists(st.sampled_from([b"%", b"%2", b"%2B", b"%e4%b8%ad", b"%ZZ", b"=", b"+", b"a", b"\n", b"\r\n",
                                       b"&", b"%3D", b"%3d", b" ", b"\xe4", b"_"]), max_size=20).map(b"".join)


@settings(max_examples=200)
@given(texts)
@example("2026-11-26 15:50:34")
@example("https://pay.example.com/pay/notify")
@example("aGVsbG8+/w==")
def test_quote_plus_equals_urllib(text):
    assert urlcode.quote_plus(text) == quote_plus(text, encoding="utf-8")


@settings(max_examples=50)
@given(gbk_texts)
def test_quote_plus_equals_urllib_in_gbk(text):
    assert urlcode.quote_plus(text, "gbk") == quote_plus(text, encoding="gbk")


@settings(max_examples=200)
@given(form_bytes | st.binary(max_size=40))
@example(b"%%41")
@example(b"=%41=")
@example(b"%4")
@example(b"%\n41%41")
@example(b"%\r\n%41")
@example(b"%=41")
@example(b"a%")
@example(b"%%%41")
@example(b"%e4%b8%ad%3D=")
def test_unquote_plus_bytes_equals_urllib(data):
    assert urlcode.unquote_plus_bytes(data) == unquote_to_bytes(data.replace(b"+", b" "))


@settings(max_examples=300)
@given(st.lists(st.sampled_from([b"%", b"%2", b"%41", b"%zz", b"=", b"+", b"a", b"\n", b"\r", b"\t", b" ", b"\xff"]),
                max_size=30).map(b"".join))
@example(b"a=" + b"%2" * 100)
@example(b"%41 \n \t")
def test_unquote_plus_bytes_never_needs_urllib_loop(data):
    """Lone escapes, line breaks and trailing spaces are decoded in C too: urllib's per-escape Python
    loop was a hostile body's way to 10 ms of CPU (issue 11 #1)."""
    expected = unquote_to_bytes(data.replace(b"+", b" "))

    def slow_path(_data):
        raise AssertionError("fell back to urllib")

    with mock.patch("urllib.parse.unquote_to_bytes", slow_path):
        assert urlcode.unquote_plus_bytes(data) == expected
