"""`make reconcile` / `make invoke FUNCTION=refund EVENT='{...}'`: invoke a function of the running
local stack directly, as ``aws lambda invoke`` would, and print its result."""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

from local.run import DEFAULT_PORT, HOST


def invoke(port: int, function: str, event: object) -> object:
    request = urllib.request.Request(
        f"http://{HOST}:{port}/local/invoke/{function}", data=json.dumps(event).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=180) as reply:
        return json.loads(reply.read())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("function")
    parser.add_argument("event", nargs="?", default="{}", help="the event as JSON (default {})")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or DEFAULT_PORT))
    args = parser.parse_args(argv)
    try:
        result = invoke(args.port, args.function, json.loads(args.event))
    except (urllib.error.URLError, OSError) as exc:
        print(f"no local stack on port {args.port} ({exc}); start it with `make run`", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 1 if isinstance(result, dict) and "errorType" in result else 0


if __name__ == "__main__":
    sys.exit(main())
