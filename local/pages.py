"""Plain server-rendered HTML for the local stack's pages (checkout, cashier, scan page).

No template engine and no front-end framework: every page is a string built here, and every
value that reaches it goes through ``esc`` (subjects, user ids and answers are anyone's text).
"""
from __future__ import annotations

import html
from typing import Iterable, Mapping, Sequence, Tuple

STYLE = """
body{font-family:system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC",sans-serif;max-width:52rem;margin:1.5rem auto;padding:0 1rem;color:#1d2129;line-height:1.45}
h1{font-size:1.5rem;margin:.2rem 0 .8rem}h2{font-size:1.15rem;margin:1.4rem 0 .5rem}
.bar{background:#1677ff;color:#fff;padding:.5rem .8rem;border-radius:.4rem;margin-bottom:1rem}
.bar a{color:#fff}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #e5e6eb;padding:.35rem .5rem;text-align:left;vertical-align:top;font-size:.95rem}
th{background:#f2f3f5}.amount{font-size:2rem;font-weight:600}
button,.button{font-size:1rem;padding:.45rem 1rem;margin:.2rem .4rem .2rem 0;border-radius:.3rem;border:1px solid #1677ff;background:#1677ff;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary,.button.secondary{background:#fff;color:#1677ff}button.danger{background:#fff;border-color:#f53f3f;color:#f53f3f}
.note{color:#4e5969;font-size:.9rem}.ok{color:#00a854}.bad{color:#f53f3f}
pre,textarea{white-space:pre-wrap;word-break:break-all;font-size:.8rem;background:#f7f8fa;padding:.5rem;border-radius:.3rem;width:100%;box-sizing:border-box}
label{margin-right:1rem}fieldset{border:1px solid #e5e6eb;border-radius:.4rem;margin:.6rem 0}
"""


def esc(value: object) -> str:
    """Text for an element or an attribute value (quotes escaped too)."""
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, *, bar: str = "", head: str = "") -> bytes:
    """A whole UTF-8 page. ``title`` is text (escaped here); ``body`` and ``bar`` are HTML built
    with ``esc`` by the caller; ``head`` is extra (escaped) HTML for the head, e.g. a refresh."""
    head = (
        '<!doctype html><html lang="zh"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style>{head}</head><body>"
    )
    top = f'<div class="bar">{bar}</div>' if bar else ""
    return (head + top + body + "</body></html>").encode("utf-8")


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, id_: str = "") -> str:
    """A table of already-escaped cells (use ``esc`` on every value that goes in)."""
    ident = f' id="{esc(id_)}"' if id_ else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def form(action: str, fields: Mapping[str, str], buttons: Sequence[Tuple[str, str, str]], *, id_: str = "") -> str:
    """A POST form with hidden ``fields`` and ``buttons`` as (name=value pairs ``value``, label,
    css class): the pressed button's ``action`` value is posted with the fields."""
    ident = f' id="{esc(id_)}"' if id_ else ""
    hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in fields.items())
    pressed = "".join(
        f'<button type="submit" name="action" value="{esc(value)}" class="{esc(css)}" id="{esc(id_ + "-" + value if id_ else value)}">{esc(label)}</button>'
        for value, label, css in buttons
    )
    return f'<form method="post" action="{esc(action)}"{ident}>{hidden}{pressed}</form>'


def redirect(location: str) -> Tuple[int, str, bytes, dict]:
    """A 303 See Other (the browser GETs ``location`` after a POST)."""
    return 303, "text/html; charset=utf-8", page("→", f'<a href="{esc(location)}">{esc(location)}</a>'), {"Location": location}
