"""File the orders paid before the pay-day index existed under their payDay (one-off, after the
deploy that creates ``pay-day``; README, "Daily bill").

``bill_reconcile`` sets payDay on every paid row its bill lists, so running it for past days
files everything Alipay billed; only a row paid here that no bill lists needs this tool, which
Scans — so run it with an operator's credentials (``dynamodb:Scan`` + ``dynamodb:UpdateItem``),
never a function's role. Each write is conditional (still paid, still no payDay): safe to repeat.

    python -m deploy.backfill_pay_day --table alipay-app-pay-prod-Order [--dry-run]
"""
from __future__ import annotations

from typing import Dict

from deploy import operator_cli
from shared.domain.orders import PAID, pay_day, pay_day_key


def backfill(client, table: str, dry_run: bool = False) -> Dict[str, int]:
    """Set payDay on paid rows without one; counts of rows filed and rows changed meanwhile."""
    counts = {"filed": 0, "changed": 0}
    pages = client.get_paginator("scan").paginate(
        TableName=table, FilterExpression="#status = :paid AND attribute_not_exists(payDay) AND attribute_exists(payDate)",
        ProjectionExpression="orderNum, payDate", ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":paid": {"N": str(PAID)}},
    )
    for item in (item for page in pages for item in page["Items"]):
        if not dry_run:
            try:
                client.update_item(
                    TableName=table, Key={"orderNum": item["orderNum"]}, UpdateExpression="SET payDay = :day",
                    ConditionExpression="#status = :paid AND attribute_not_exists(payDay)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={":paid": {"N": str(PAID)}, ":day": {"S": pay_day_key(item["orderNum"]["S"], pay_day(item["payDate"]["S"]))}},
                )
            except client.exceptions.ConditionalCheckFailedException:
                counts["changed"] += 1
                continue
        counts["filed"] += 1
    return counts


def main(argv=None) -> None:
    operator_cli.main(__doc__, backfill, argv)


if __name__ == "__main__":
    main()
