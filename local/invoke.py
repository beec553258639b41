"""`make reconcile` / `make invoke FUNCTION=refund EVENT='{...}'`: invoke a function of the running
local stack directly, as ``aws lambda invoke`` would, and print its result.

Every mistake a newcomer makes here gets one line saying what to do, never a traceback: no or
an unknown FUNCTION (the functions of serverless.yml are listed), an EVENT that is not JSON, no
stack on the port, and a reconcile pass that had nothing to look at yet (new orders wait
``RECONCILE_MIN_AGE_SECONDS`` before their first look).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import List

from local.run import DEFAULT_PORT, HOST

DEFAULT_MIN_AGE_SECONDS = 300  # shared/reconcile.py Policy.min_age


def function_names() -> List[str]:
    """The functions of serverless.yml (names only: nothing is imported)."""
    import yaml

    from local.schema import SERVERLESS_YML

    return sorted((yaml.safe_load(SERVERLESS_YML.read_text(encoding="utf-8")).get("functions") or {}))


class Refused(Exception):
    """A mistake in the command line, or no stack: the message is the one line to print."""


def invoke(port: int, function: str, event: object) -> object:
    request = urllib.request.Request(
        f"http://{HOST}:{port}/local/invoke/{function}", data=json.dumps(event).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=180) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:  # the stack answered: say what it said
        raise Refused(f"the local stack refused the invocation (HTTP {exc.code}): {exc.read().decode(errors='replace')[:200]}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Refused(f"no local stack on {HOST}:{port} ({reason}); start it with `make run` (same PORT) in another terminal") from None


def parse(function: str, event_text: str) -> object:
    names = function_names()
    if not function:
        raise Refused(f"make invoke needs FUNCTION=<name>, one of: {', '.join(names)}")
    if function not in names:
        raise Refused(f"no function {function[:64]!r} in serverless.yml; FUNCTION is one of: {', '.join(names)}")
    try:
        return json.loads(event_text or "{}")
    except ValueError as exc:
        raise Refused(f"EVENT is not JSON ({exc}); e.g. EVENT='{{\"outTradeNo\": \"ORDER_...\"}}'") from None


def hint(function: str, result: object) -> str:
    """What a newcomer needs to know about a result, or ""."""
    if function in ("reconcile", "reconcile_worker") and isinstance(result, dict) and result.get("examined") == 0:
        seconds = os.environ.get("RECONCILE_MIN_AGE_SECONDS") or DEFAULT_MIN_AGE_SECONDS
        return (f"examined 0: no order is due yet. A new order waits RECONCILE_MIN_AGE_SECONDS ({seconds} s "
                "unless the stack was started with another value) before reconcile first looks at it, so that "
                "its notify has the chance to arrive; start the stack with RECONCILE_MIN_AGE_SECONDS=0 make run "
                "to look at once.")
    return ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("function", nargs="?", default="")
    parser.add_argument("event", nargs="?", default="{}", help="the event as JSON (default {})")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or DEFAULT_PORT))
    args = parser.parse_args(argv)
    try:
        result = invoke(args.port, args.function, parse(args.function, args.event))
    except Refused as exc:
        print(exc, file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False, indent=2))
    note = hint(args.function, result)
    if note:
        print(note, file=sys.stderr)
    return 1 if isinstance(result, dict) and "errorType" in result else 0


if __name__ == "__main__":
    sys.exit(main())
