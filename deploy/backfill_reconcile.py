"""Put the orders written before the reconcile index existed into it (one-off, after the deploy
that creates ``reconcile-due``; README, "Reconciliation and refunds").

Such rows lack reconcileShard / reconcileAt, so no pass would ever look at them. This gives them
a first look now: every unpaid order, and every closed order whose late-pay window is still open
(the old reconcile closed orders Alipay did not know, and cannot tell them from Alipay's closes;
a look settles which). Each write is conditional (still that status, still not in the index), so
running it twice, or while the functions run, is safe. It Scans the table, so run it with an
operator's credentials (``dynamodb:Scan`` + ``dynamodb:UpdateItem`` on the table), not a
function's role:

    python -m deploy.backfill_reconcile --table alipay-app-pay-prod-Order [--dry-run]
"""
from __future__ import annotations

from datetime import datetime
from typing import Dict, Optional

from deploy import operator_cli
from shared.domain import clock
from shared import reconcile
from shared.domain.orders import CLOSED, UNPAID, reconcile_shard


def backfill(client, table: str, now: Optional[datetime] = None, policy: Optional[reconcile.Policy] = None,
             dry_run: bool = False) -> Dict[str, int]:
    """Enlist the rows that need looking at; counts per status (and the rows changed meanwhile)."""
    now = clock.now() if now is None else now
    policy = reconcile.Policy.from_env() if policy is None else policy
    since = clock.iso(now - min(policy.close_after + policy.late_pay_window, reconcile.MAX_WINDOW))
    counts = {"unpaid": 0, "closed": 0, "changed": 0}
    pages = client.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="attribute_not_exists(reconcileAt) AND (#status = :unpaid OR (#status = :closed AND orderDate >= :since))",
        ProjectionExpression="orderNum, #status",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":unpaid": {"N": str(UNPAID)}, ":closed": {"N": str(CLOSED)}, ":since": {"S": since}},
    )
    for page in pages:
        for item in page["Items"]:
            order_num, status = item["orderNum"]["S"], item["status"]["N"]
            if not dry_run:
                try:
                    client.update_item(
                        TableName=table,
                        Key={"orderNum": {"S": order_num}},
                        UpdateExpression="SET reconcileShard = :shard, reconcileAt = :at",
                        ConditionExpression="attribute_not_exists(reconcileAt) AND #status = :status",
                        ExpressionAttributeNames={"#status": "status"},
                        ExpressionAttributeValues={
                            ":shard": {"N": str(reconcile_shard(order_num))}, ":at": {"S": clock.iso(now)}, ":status": {"N": status},
                        },
                    )
                except client.exceptions.ConditionalCheckFailedException:
                    counts["changed"] += 1  # paid, closed or enlisted meanwhile: nothing to do
                    continue
            counts["unpaid" if int(status) == UNPAID else "closed"] += 1
    return counts


def main(argv=None) -> None:
    operator_cli.main(__doc__, backfill, argv)


if __name__ == "__main__":
    main()
