"""The notify decoder takes the whole body at once; it must give what field-by-field decoding gives."""
from hypothesis import given, settings, strategies as st

from local import alipay
from shared.alipay import notify
from shared.alipay.notify import NotifyRejected, parse_form

pieces = st.sampled_from([b"a", b"k", b"charset", b"=", b"&", b"%26", b"%3D", b"%3d", b"%", b"%2", b"%E4%B8%AD",
                          b"%CA%FD", b"+", b"utf-8", b"gbk", b"%FF", b"\xe4\xb8\xad", b"b", b"=1"])


def outcome(parse, raw: bytes):
    try:
        return parse(raw)
    except NotifyRejected:
        return "rejected"


@settings(max_examples=300)
@given(st.lists(pieces, max_size=14).map(b"".join))
def test_whole_body_and_field_by_field_parsing_agree(raw):
    assert outcome(parse_form, raw) == outcome(notify._parse_by_field, raw)


@settings(max_examples=50)
@given(st.dictionaries(st.text("abc_", min_size=1, max_size=4), st.text(max_size=12).filter(lambda s: "\x00" not in s),
                       max_size=6))
def test_any_encoded_form_decodes_to_its_fields(fields):
    assert parse_form(alipay.form_body(fields, "utf-8")) == fields


def test_escaped_separators_take_the_field_by_field_path_and_stay_exact():
    assert parse_form(b"a=x%26y%3Dz&b%3Dc=1&c=%2B") == {"a": "x&y=z", "b=c": "1", "c": "+"}
