"""The command line of the one-off operator tools (``python -m deploy.backfill_…``): a table name,
``--dry-run``, the operator's own credentials, the counts printed as JSON."""
from __future__ import annotations

import argparse
import json
from typing import Callable, Dict, Optional, Sequence


def main(doc: str, backfill: Callable[..., Dict[str, int]], argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--table", required=True, help="the Order table's name")
    parser.add_argument("--dry-run", action="store_true", help="count, write nothing")
    args = parser.parse_args(argv)
    import boto3  # noqa: PLC0415 - an operator's tool, with the operator's credentials

    print(json.dumps(backfill(boto3.client("dynamodb"), args.table, dry_run=args.dry_run)))
