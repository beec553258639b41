"""The Order table on DynamoDB: every write is conditional, every failed condition explained.

``boto3`` is imported here only, and lazily, so the pure core of shared/ imports no AWS code.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .orders import (
    CLOSED, MAX_REFUNDS, PAID, REFUND_DONE, REFUND_PENDING, UNPAID, Order, OrderExists, Outcome, Refund, Transition, judge,
)

STATUS_INDEX = "status-orderDate"  # serverless.yml's GSI on the Order table (status, orderDate)

_clients: Dict[str, Any] = {}


def dynamodb_client():
    """One low-level client per container (creating one costs tens of milliseconds)."""
    if "dynamodb" not in _clients:
        import boto3  # noqa: PLC0415 - deferred: pure modules must not pay for it

        _clients["dynamodb"] = boto3.client("dynamodb")
    return _clients["dynamodb"]


def reset_clients() -> None:
    """Drop the cached client (tests start and stop moto around each case)."""
    _clients.clear()


# --- (de)serialisation of the few attribute types we use ---------------------------------------

def _to_attr(value: Any) -> Dict[str, str]:
    if isinstance(value, bool):
        raise TypeError("booleans are not stored")
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {k: _to_attr(v) for k, v in value.items()}}
    raise TypeError(f"unsupported attribute type {type(value).__name__}")


def _from_attr(attr: Dict[str, Any]) -> Any:
    if "N" in attr:
        return int(attr["N"])
    if "M" in attr:
        return {k: _from_attr(v) for k, v in attr["M"].items()}
    return attr["S"]


def _item(order: Order) -> Dict[str, Dict[str, str]]:
    return {k: _to_attr(v) for k, v in order.to_dict().items()}


def _order(item: Optional[Dict[str, Dict[str, str]]]) -> Optional[Order]:
    if not item:
        return None
    return Order.from_dict({k: _from_attr(v) for k, v in item.items()})


class DynamoOrderRepository:
    """``OrderStore`` on one DynamoDB table keyed by ``orderNum`` (S)."""

    def __init__(self, table_name: str, client=None) -> None:
        self.table_name = table_name
        self._client = client if client is not None else dynamodb_client()

    def create(self, order: Order) -> None:
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=_item(order),
                ConditionExpression="attribute_not_exists(orderNum)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise OrderExists(order.order_num) from None

    def get(self, order_num: str) -> Optional[Order]:
        reply = self._client.get_item(
            TableName=self.table_name, Key={"orderNum": {"S": order_num}}, ConsistentRead=True
        )
        return _order(reply.get("Item"))

    def mark_paid(self, order_num: str, cents: int, trade_no: str, pay_date: str) -> Transition:
        return self._transition(
            order_num,
            target=PAID,
            cents=cents,
            update="SET #status = :target, payDate = :payDate, tradeNo = :tradeNo",
            condition="#status IN (:unpaid, :closed)",
            values={":payDate": _to_attr(pay_date), ":tradeNo": _to_attr(trade_no), ":closed": _to_attr(CLOSED)},
        )

    def mark_closed(self, order_num: str, cents: Optional[int]) -> Transition:
        return self._transition(
            order_num, target=CLOSED, cents=cents, update="SET #status = :target", condition="#status = :unpaid"
        )

    def unpaid_orders(
        self, older_than: str, limit: int, after: Optional[Dict[str, str]] = None
    ) -> Tuple[List[Tuple[str, str]], Optional[Dict[str, str]]]:
        """Up to ``limit`` unpaid ``(orderNum, orderDate)`` with orderDate <= ``older_than``,
        oldest first, from the status GSI; plus the cursor to continue after them (or None)."""
        kwargs: Dict[str, Any] = {}
        if after:
            kwargs["ExclusiveStartKey"] = {
                "orderNum": _to_attr(after["orderNum"]), "orderDate": _to_attr(after["orderDate"]), "status": _to_attr(UNPAID)
            }
        reply = self._client.query(
            TableName=self.table_name,
            IndexName=STATUS_INDEX,
            KeyConditionExpression="#status = :unpaid AND orderDate <= :cutoff",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":unpaid": _to_attr(UNPAID), ":cutoff": _to_attr(older_than)},
            ScanIndexForward=True,
            Limit=limit,
            **kwargs,
        )
        rows = [(item["orderNum"]["S"], item["orderDate"]["S"]) for item in reply.get("Items", [])]
        last = reply.get("LastEvaluatedKey")
        return rows, ({"orderNum": last["orderNum"]["S"], "orderDate": last["orderDate"]["S"]} if last else None)

    def _transition(
        self,
        order_num: str,
        *,
        target: int,
        cents: Optional[int],
        update: str,
        condition: str,
        values: Optional[Dict[str, Dict[str, str]]] = None,
    ) -> Transition:
        """One conditional UpdateItem; on a failed condition, judge the old item it returns."""
        condition = f"attribute_exists(orderNum) AND {condition}"
        names = {"#status": "status"}
        attr_values = {":target": _to_attr(target), ":unpaid": _to_attr(UNPAID), **(values or {})}
        if cents is not None:
            condition += " AND totalAmount = :cents"
            attr_values[":cents"] = _to_attr(cents)
        applied, before = self._update(order_num, update, condition, names, attr_values)
        if not applied:
            return Transition(judge(before, target, cents), before)
        return Transition(Outcome.APPLIED, before)

    def _update(
        self, order_num: str, update: str, condition: str, names: Dict[str, str], values: Dict[str, Dict[str, Any]]
    ) -> Tuple[bool, Optional[Order]]:
        """One conditional UpdateItem: ``(applied, the item before)``, also when the condition failed."""
        try:
            reply = self._client.update_item(
                TableName=self.table_name,
                Key={"orderNum": {"S": order_num}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            return False, _order(exc.response.get("Item"))
        return True, _order(reply.get("Attributes"))

    # --- refunds: a map keyed by out_request_no, and refundedAmount (cents) beside it ------------

    def add_refund(self, order_num: str, total_cents: int, out_request_no: str, refund: Refund) -> Tuple[bool, Optional[Order]]:
        """Record ``refund`` on a paid order if its cents still fit and the key is free.

        The condition carries the arithmetic: refundedAmount <= total - cents before the write,
        so concurrent refunds can never add up beyond the paid amount.
        """
        names = {"#status": "status", "#rid": out_request_no}
        values = {
            ":paid": _to_attr(PAID), ":total": _to_attr(total_cents), ":cents": _to_attr(refund.cents),
            ":limit": _to_attr(total_cents - refund.cents), ":zero": _to_attr(0),
        }
        condition = (
            "attribute_exists(orderNum) AND #status = :paid AND totalAmount = :total"
            " AND (attribute_not_exists(refundedAmount) OR refundedAmount <= :limit)"
        )
        applied, before = self._update(
            order_num,
            "SET refunds.#rid = :rec, refundedAmount = if_not_exists(refundedAmount, :zero) + :cents",
            condition + " AND attribute_exists(refunds) AND attribute_not_exists(refunds.#rid) AND size(refunds) < :max",
            names, {**values, ":rec": _to_attr(refund.to_dict()), ":max": _to_attr(MAX_REFUNDS)},
        )
        if applied or before is None or before.refunds:
            return applied, before
        names.pop("#rid")  # no refund yet (or every one was released): the map is created whole
        return self._update(
            order_num,
            "SET refunds = :one, refundedAmount = if_not_exists(refundedAmount, :zero) + :cents",
            condition + " AND (attribute_not_exists(refunds) OR size(refunds) = :zero)",
            names, {**values, ":one": _to_attr({out_request_no: refund.to_dict()})},
        )

    def settle_refund(self, order_num: str, out_request_no: str, cents: int, refunded_at: str) -> Tuple[bool, Optional[Order]]:
        """Mark a pending refund done (Alipay confirmed it)."""
        return self._update(
            order_num,
            "SET refunds.#rid.#status = :done, refunds.#rid.refundedAt = :at",
            "refunds.#rid.amount = :cents AND refunds.#rid.#status = :pending",
            {"#rid": out_request_no, "#status": "status"},
            {":done": _to_attr(REFUND_DONE), ":pending": _to_attr(REFUND_PENDING), ":cents": _to_attr(cents), ":at": _to_attr(refunded_at)},
        )

    def release_refund(self, order_num: str, out_request_no: str, cents: int) -> Tuple[bool, Optional[Order]]:
        """Drop a pending refund Alipay definitely refused, giving its cents back."""
        return self._update(
            order_num,
            "REMOVE refunds.#rid SET refundedAmount = refundedAmount - :cents",
            "refunds.#rid.amount = :cents AND refunds.#rid.#status = :pending",
            {"#rid": out_request_no, "#status": "status"},
            {":pending": _to_attr(REFUND_PENDING), ":cents": _to_attr(cents)},
        )


_repositories: Dict[str, DynamoOrderRepository] = {}


def order_repository(table_name: str) -> DynamoOrderRepository:
    """The container's repository for ``table_name`` (client and table reused across requests)."""
    repo = _repositories.get(table_name)
    if repo is None:
        repo = _repositories[table_name] = DynamoOrderRepository(table_name)
    return repo


def reset() -> None:
    reset_clients()
    _repositories.clear()
