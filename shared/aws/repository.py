"""DynamoDB (and the SSM / Secrets Manager reads) for the core: every write is conditional,
every failed condition explained, every call bounded in time (``CallBudget``; the handlers'
whole-request sums that add Alipay's gateway to these are shared/budgets.py's).

``boto3`` is imported here only, and lazily, so the pure core of shared/ imports no AWS code.
"""
from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ..domain.idempotency import COMPLETED, IN_PROGRESS, Record
from ..domain.orders import (
    CLOSED, MAX_REFUNDS, PAID, RECONCILE_SHARDS, REFUND_DONE, REFUND_FAILED, REFUND_PENDING, UNPAID, Due, Order, OrderExists,
    OrderSummary, Outcome, PendingRefunds, Recheck, Refund, Transition, judge, pay_day, pay_day_key, pay_day_keys, reconcile_shard,
)

# serverless.yml's sparse GSI on the Order table: (reconcileShard, reconcileAt), only the orders
# that reconcile must still look at. Every write that settles an order also leaves the index.
RECONCILE_INDEX = "reconcile-due"
LEAVE_INDEX = "REMOVE reconcileShard, reconcileAt, reconcileTries"
# The sparse GSI "refunds-pending": (refundShard, refundCheckAt), only paid orders with a refund
# still PENDING, counted by pendingRefunds (refund_settle takes an order out when it reaches 0).
REFUNDS_INDEX = "refunds-pending"
# The sparse GSI of paid orders by the Shanghai date of their payment (payDay, orderNum): one
# day's paid orders for bill_reconcile. The paying write sets payDay.
PAY_DAY_INDEX = "pay-day"
BATCH_GET_KEYS = 100  # DynamoDB's limit per BatchGetItem
BATCH_GET_ROUNDS = 8  # rounds for UnprocessedKeys (throttling), with jittered backoff between them


class UnprocessedKeys(RuntimeError):
    """DynamoDB kept answering some keys as unprocessed: nothing may be concluded about them."""

# --- time budgets -------------------------------------------------------------------------------

MAX_BACKOFF = 20.0  # botocore's cap on one retry delay (retries/standard.py ExponentialBackoff)


@dataclass(frozen=True)
class CallBudget:
    """A botocore client setting whose worst case is a sum we can check without sleeping.

    Standard retry mode (AWS's recommended mode: retries throttling, 5xx and timeouts, with
    jittered exponential backoff and a retry quota) waits at most ``min(2 ** (n - 1), 20)``
    seconds after failed attempt ``n``; each attempt waits at most connect + read timeout.
    """

    attempts: int
    connect_timeout: float
    read_timeout: float
    max_pool_connections: int = 40  # reconcile's pool of looks (at most 32) plus its index reads

    def backoff_bound(self, failed_attempt: int) -> float:
        return min(2.0 ** (failed_attempt - 1), MAX_BACKOFF)

    def worst_case_seconds(self) -> float:
        """Every attempt times out in full and every backoff draws its maximum."""
        waits = sum(self.backoff_bound(n) for n in range(1, self.attempts))
        return self.attempts * (self.connect_timeout + self.read_timeout) + waits

    def botocore_config(self):
        from botocore.config import Config  # noqa: PLC0415

        return Config(
            retries={"mode": "standard", "total_max_attempts": self.attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_pool_connections=self.max_pool_connections,
        )


# DynamoDB in-region answers in milliseconds; one retry covers a throttle or a dropped connection,
# and a second failure is Alipay's to retry (``fail``), never ours to wait out.
DYNAMODB = CallBudget(attempts=2, connect_timeout=0.3, read_timeout=0.6)
# Keys are read once per container and then every SECRETS_TTL_SECONDS; a failed refresh keeps the
# cached key (shared/secrets.py), so only a cold start depends on this one unretried call.
SECRETS = CallBudget(attempts=1, connect_timeout=0.3, read_timeout=0.7)
# An asynchronous Invoke (reconcile's fan-out) only queues the event: Lambda answers 202 at once.
# Not retried: a retry after a lost answer queues a second pass of that shard (harmless, but
# double the gateway calls); a failed dispatch fails the run instead, and the next schedule goes.
LAMBDA = CallBudget(attempts=1, connect_timeout=1.0, read_timeout=3.0)
# Order events (shared/order_events.py) run off the stream, where nobody waits on them: more
# patience per call, and a batch that still fails is retried by Lambda's event source mapping.
EVENTS = CallBudget(attempts=3, connect_timeout=1.0, read_timeout=3.0)


# --- clients --------------------------------------------------------------------------------------

_clients: Dict[str, Any] = {}
# The daily bill's report: one PutObject a day by a function with minutes to spare.
REPORTS = CallBudget(attempts=3, connect_timeout=1.0, read_timeout=5.0)
BUDGETS = {"dynamodb": DYNAMODB, "ssm": SECRETS, "secretsmanager": SECRETS, "events": EVENTS, "lambda": LAMBDA, "s3": REPORTS}


def client(service: str):
    """One low-level client per service and container (creating one costs tens of milliseconds),
    configured with the service's ``CallBudget``."""
    if service not in _clients:
        import boto3  # noqa: PLC0415 - deferred: pure modules must not pay for it

        _clients[service] = boto3.client(service, config=BUDGETS[service].botocore_config())
    return _clients[service]


def dynamodb_client():
    return client("dynamodb")


def reset_clients() -> None:
    """Drop the cached clients (tests start and stop moto around each case)."""
    _clients.clear()


# --- secrets ----------------------------------------------------------------------------------

class SecretUnavailable(RuntimeError):
    """A key could not be read from SSM or Secrets Manager. The message holds the AWS error code
    and the parameter's name, never a value."""


def read_ssm_parameter(name: str) -> str:
    """An SSM parameter's value, decrypted (SecureString)."""
    ssm = client("ssm")
    try:
        return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except Exception as exc:  # noqa: BLE001 - botocore raises many classes; the code is what matters
        raise SecretUnavailable(f"SSM GetParameter {name} failed: {_error_code(exc)}") from None


def read_secret(secret_id: str) -> str:
    """A Secrets Manager secret's ``SecretString``."""
    secrets = client("secretsmanager")
    try:
        value = secrets.get_secret_value(SecretId=secret_id).get("SecretString")
    except Exception as exc:  # noqa: BLE001
        raise SecretUnavailable(f"Secrets Manager GetSecretValue {secret_id} failed: {_error_code(exc)}") from None
    if value is None:
        raise SecretUnavailable(f"Secrets Manager secret {secret_id} has no SecretString")
    return value


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code") or type(exc).__name__


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


def order_from_image(item: Optional[Dict[str, Dict[str, str]]]) -> Optional[Order]:
    """An Order from its DynamoDB attribute map (a GetItem item, or a stream record's image)."""
    return _order(item)


def _order(item: Optional[Dict[str, Dict[str, str]]]) -> Optional[Order]:
    if not item:
        return None
    return Order.from_dict({k: _from_attr(v) for k, v in item.items()})


def _due(item: Dict[str, Dict[str, str]]) -> Due:
    """A row of the reconcile index (its projection: keys, status, orderDate, reconcileTries)."""
    return Due(  # tolerant beyond its keys: a malformed row (a backfill's) fails its own look, not the pass
        order_num=item["orderNum"]["S"], reconcile_at=item["reconcileAt"]["S"],
        status=_int_or(item.get("status", {}).get("N"), -1),
        order_date=str(item.get("orderDate", {}).get("S", "")), tries=_int_or(item.get("reconcileTries", {}).get("N"), 0),
    )


def _int_or(text: Optional[str], default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _recheck_values(order_num: str, recheck: Recheck) -> Dict[str, Dict[str, str]]:
    return {
        ":shard": _to_attr(reconcile_shard(order_num)), ":at": _to_attr(recheck.at), ":tries": _to_attr(recheck.tries),
    }


class DynamoOrderRepository:
    """``OrderStore`` on one DynamoDB table keyed by ``orderNum`` (S)."""

    def __init__(self, table_name: str, client=None) -> None:
        self.table_name = table_name
        self._client = client if client is not None else dynamodb_client()

    def create(self, order: Order) -> None:
        item = _item(order)
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(orderNum)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            if exc.response.get("Item") == item:
                # Our own earlier attempt landed and its answer was lost (a timeout, then a
                # retry by botocore): the row is exactly ours, so the create did happen.
                return
            raise OrderExists(order.order_num) from None

    def get(self, order_num: str) -> Optional[Order]:
        reply = self._client.get_item(
            TableName=self.table_name, Key={"orderNum": {"S": order_num}}, ConsistentRead=True
        )
        return _order(reply.get("Item"))

    def mark_paid(self, order_num: str, cents: int, trade_no: str, pay_date: str, *, also: str = "",
                  values: Optional[Dict[str, Dict[str, Any]]] = None) -> Transition:
        """status := 1 from 0 or 2 (amount equal), leaving the reconcile index; ``also``: more SET
        clauses in the same write (``mark_paid_refunded``)."""
        return self._transition(
            order_num,
            target=PAID,
            cents=cents,
            update=f"SET #status = :target, payDate = :payDate, payDay = :payDay, tradeNo = :tradeNo{also} {LEAVE_INDEX}",
            condition="#status IN (:unpaid, :closed)",
            values={":payDate": _to_attr(pay_date), ":payDay": _to_attr(pay_day_key(order_num, pay_day(pay_date))),
                    ":tradeNo": _to_attr(trade_no), ":closed": _to_attr(CLOSED),
                    **(values or {})},
        )

    def mark_paid_refunded(
        self, order_num: str, cents: int, trade_no: str, pay_date: str, out_request_no: str, refund: Refund
    ) -> Transition:
        """Paid and refunded at Alipay in one write (an unpaid order has no refunds yet)."""
        return self.mark_paid(
            order_num, cents, trade_no, pay_date, also=", refunds = :one, refundedAmount = :refunded",
            values={":one": _to_attr({out_request_no: refund.to_dict()}), ":refunded": _to_attr(refund.cents)},
        )

    def mark_closed(self, order_num: str, cents: Optional[int], recheck: Optional[Recheck] = None) -> Transition:
        if recheck is None:  # Alipay's close: final, so the order leaves the index (also if closed here before)
            return self._transition(
                order_num, target=CLOSED, cents=cents, update=f"SET #status = :target {LEAVE_INDEX}",
                condition="(#status = :unpaid OR (#status = :target AND attribute_exists(reconcileAt)))",
            )
        return self._transition(  # ours only: it stays in the index, due again at recheck.at
            order_num, target=CLOSED, cents=cents,
            update="SET #status = :target, reconcileShard = :shard, reconcileAt = :at, reconcileTries = :tries",
            condition="#status = :unpaid", values=_recheck_values(order_num, recheck),
        )

    def reschedule(self, due: Due, recheck: Optional[Recheck]) -> bool:
        """Push an order reconcile could not settle back to ``recheck.at``, or (``None``) take it
        out of the index for good. Only if nothing changed it since the index showed it (same
        status and reconcileAt): a settled order never re-enters the index, and of two
        overlapping passes only one moves it. Returns whether it was written."""
        update, values = LEAVE_INDEX, {}
        if recheck is not None:
            update, values = "SET reconcileAt = :at, reconcileTries = :tries", _recheck_values(due.order_num, recheck)
            values.pop(":shard")
        applied, _ = self._update(
            due.order_num, update, "#status = :status AND reconcileAt = :seen", {"#status": "status"},
            {":status": _to_attr(due.status), ":seen": _to_attr(due.reconcile_at), **values},
        )
        return applied

    def due_orders(self, now: str, limit: int) -> Tuple[List[Due], bool]:
        """Up to ``limit`` orders with reconcileAt <= ``now``, earliest first, from every shard of
        the reconcile index (one Query each, never a Scan); and whether more may be due."""
        rows: List[Due] = []
        more = False
        for shard in range(RECONCILE_SHARDS):
            page, start = self.due_page(shard, now, limit)
            rows += page
            more = more or start is not None
        rows.sort(key=lambda due: (due.reconcile_at, due.order_num))
        return rows[:limit], more or len(rows) > limit

    # --- the daily bill: many orders by key, one day's paid orders ------------------------------

    def batch_get(self, order_nums: Iterable[str], threads: int = 8) -> Dict[str, OrderSummary]:
        """What the bill needs of the stored orders among ``order_nums`` (strongly consistent), by
        orderNum: BatchGetItem with 100 keys a call and only ``OrderSummary.ATTRIBUTES`` asked
        for, ``threads`` calls at a time, UnprocessedKeys asked again."""
        keys = sorted(set(order_nums))
        chunks = [keys[i:i + BATCH_GET_KEYS] for i in range(0, len(keys), BATCH_GET_KEYS)]
        found: Dict[str, OrderSummary] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(chunks) or 1))) as pool:
            for items in pool.map(self._batch_get, chunks):
                for item in items:
                    summary = OrderSummary.from_dict({k: _from_attr(v) for k, v in item.items()})
                    found[summary.order_num] = summary
        return found

    def _batch_get(self, keys: Sequence[str]) -> List[Dict[str, Any]]:
        names = {f"#a{n}": name for n, name in enumerate(OrderSummary.ATTRIBUTES)}
        request = {self.table_name: {
            "Keys": [{"orderNum": {"S": key}} for key in keys], "ConsistentRead": True,
            "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names,
        }}
        items: List[Dict[str, Any]] = []
        for round_ in range(BATCH_GET_ROUNDS):
            reply = self._client.batch_get_item(RequestItems=request)
            items += reply.get("Responses", {}).get(self.table_name, [])
            request = reply.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(random.uniform(0, min(0.05 * 2 ** round_, 2.0)))  # AWS's advice: back off, then ask again
        left = len(request.get(self.table_name, {}).get("Keys", []))
        raise UnprocessedKeys(f"{left} keys still unprocessed after {BATCH_GET_ROUNDS} BatchGetItem rounds")

    def paid_on(self, day: str) -> List[Tuple[str, int, Optional[str]]]:
        """``(orderNum, totalAmount, tradeNo)`` of every order paid on ``day`` (YYYY-MM-DD,
        Shanghai), from the pay-day index: Query pages, never a Scan, the 16 shards in parallel.
        Eventually consistent (an index cannot be read otherwise), and cheap: a Query is billed
        by the bytes it reads (0.5 read unit per 4 KB), so the day's ~100-byte index entries
        cost about a hundredth of a strongly consistent read of each by key (1 unit an item)."""
        def shard(key: str) -> List[Tuple[str, int, Optional[str]]]:
            rows: List[Tuple[str, int, Optional[str]]] = []
            kwargs: Dict[str, Any] = {
                "TableName": self.table_name, "IndexName": PAY_DAY_INDEX, "KeyConditionExpression": "#day = :key",
                "ExpressionAttributeValues": {":key": _to_attr(key)},
                "ProjectionExpression": "#order, #cents, #trade",  # only what the bill is matched on
                "ExpressionAttributeNames": {"#day": "payDay", "#order": "orderNum", "#cents": "totalAmount", "#trade": "tradeNo"},
            }
            while True:
                reply = self._client.query(**kwargs)
                rows += [(item["orderNum"]["S"], int(item["totalAmount"]["N"]), item.get("tradeNo", {}).get("S"))
                         for item in reply.get("Items", [])]
                if "LastEvaluatedKey" not in reply:
                    return rows
                kwargs["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

        keys = pay_day_keys(day)
        with ThreadPoolExecutor(max_workers=min(8, len(keys))) as pool:
            return sorted(row for rows in pool.map(shard, keys) for row in rows)

    def set_pay_day(self, order_num: str, day: str) -> bool:
        """File a paid order under ``day`` in the pay-day index: one paid before the index existed
        (no payDay), or one whose payDate came from another clock than the bill's."""
        applied, _ = self._update(
            order_num, "SET payDay = :key", "#status = :paid AND (attribute_not_exists(payDay) OR payDay <> :key)",
            {"#status": "status"}, {":key": _to_attr(pay_day_key(order_num, day)), ":paid": _to_attr(PAID)},
        )
        return applied

    def due_page(self, shard: int, now: str, limit: int, start: Optional[Dict[str, Any]] = None
                 ) -> Tuple[List[Due], Optional[Dict[str, Any]]]:
        """One page of shard ``shard``'s due orders, earliest first, from ``start`` (the previous
        page's ``LastEvaluatedKey``); and where the next page starts (None: no more)."""
        query: Dict[str, Any] = dict(
            TableName=self.table_name,
            IndexName=RECONCILE_INDEX,
            KeyConditionExpression="reconcileShard = :shard AND reconcileAt <= :now",
            ExpressionAttributeValues={":shard": _to_attr(shard), ":now": _to_attr(now)},
            ScanIndexForward=True,
            Limit=limit,
        )
        if start is not None:
            query["ExclusiveStartKey"] = start
        reply = self._client.query(**query)
        return [_due(item) for item in reply.get("Items", [])], reply.get("LastEvaluatedKey")

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
        if before is not None and before.status == target:  # only the index attributes changed
            return Transition(Outcome.ALREADY, before)
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
                **({"ExpressionAttributeNames": names} if names else {}),
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            return False, _order(exc.response.get("Item"))
        return True, _order(reply.get("Attributes"))

    # --- refunds: a map keyed by out_request_no, and refundedAmount (cents) beside it ------------

    def add_refund(
        self, order_num: str, total_cents: int, out_request_no: str, refund: Refund, check_at: Optional[str] = None
    ) -> Tuple[bool, Optional[Order]]:
        """Record ``refund`` on a paid order if its cents still fit and the key is free.

        The condition carries the arithmetic: refundedAmount <= total - cents before the write,
        so concurrent refunds can never add up beyond the paid amount. A PENDING refund is
        counted in ``pendingRefunds`` and puts the order in the refunds-pending index, first due
        at ``check_at`` (an earlier due time stays).
        """
        names = {"#status": "status", "#rid": out_request_no}
        values = {
            ":paid": _to_attr(PAID), ":total": _to_attr(total_cents), ":cents": _to_attr(refund.cents),
            ":limit": _to_attr(total_cents - refund.cents), ":zero": _to_attr(0),
        }
        pending = ""
        if refund.status == REFUND_PENDING:
            pending = (", pendingRefunds = if_not_exists(pendingRefunds, :zero) + :one, refundShard = :rshard,"
                       " refundCheckAt = if_not_exists(refundCheckAt, :check), pendingSince = if_not_exists(pendingSince, :since)")
            values.update({
                ":one": _to_attr(1), ":rshard": _to_attr(reconcile_shard(order_num)),
                ":check": _to_attr(check_at or refund.requested_at), ":since": _to_attr(refund.requested_at),
            })
        condition = (
            "attribute_exists(orderNum) AND #status = :paid AND totalAmount = :total"
            " AND (attribute_not_exists(refundedAmount) OR refundedAmount <= :limit)"
        )
        applied, before = self._update(
            order_num,
            "SET refunds.#rid = :rec, refundedAmount = if_not_exists(refundedAmount, :zero) + :cents" + pending,
            condition + " AND attribute_exists(refunds) AND attribute_not_exists(refunds.#rid) AND size(refunds) < :max",
            names, {**values, ":rec": _to_attr(refund.to_dict()), ":max": _to_attr(MAX_REFUNDS)},
        )
        if applied or before is None or before.refunds:
            return applied or _landed(before, out_request_no, refund), before
        names.pop("#rid")  # no refund yet: the map is created whole
        applied, before = self._update(
            order_num,
            "SET refunds = :new, refundedAmount = if_not_exists(refundedAmount, :zero) + :cents" + pending,
            condition + " AND (attribute_not_exists(refunds) OR size(refunds) = :zero)",
            names, {**values, ":new": _to_attr({out_request_no: refund.to_dict()})},
        )
        return applied or _landed(before, out_request_no, refund), before

    def settle_refund(self, order_num: str, out_request_no: str, cents: int, refunded_at: str) -> Tuple[bool, Optional[Order]]:
        """Mark a pending refund done (Alipay confirmed it); one pending refund fewer."""
        return self._update(
            order_num,
            "SET refunds.#rid.#status = :done, refunds.#rid.refundedAt = :at, pendingRefunds = if_not_exists(pendingRefunds, :one) - :one",
            "refunds.#rid.amount = :cents AND refunds.#rid.#status = :pending",
            {"#rid": out_request_no, "#status": "status"},
            {":done": _to_attr(REFUND_DONE), ":pending": _to_attr(REFUND_PENDING), ":cents": _to_attr(cents),
             ":at": _to_attr(refunded_at), ":one": _to_attr(1)},
        )

    def release_refund(self, order_num: str, out_request_no: str, cents: int) -> Tuple[bool, Optional[Order]]:
        """Drop a pending refund Alipay definitely refused to the call that made it (which answers
        422 and may try the same out_request_no again), giving its cents back."""
        return self._update(
            order_num,
            "REMOVE refunds.#rid SET refundedAmount = refundedAmount - :cents, pendingRefunds = if_not_exists(pendingRefunds, :one) - :one",
            "refunds.#rid.amount = :cents AND refunds.#rid.#status = :pending",
            {"#rid": out_request_no, "#status": "status"},
            {":pending": _to_attr(REFUND_PENDING), ":cents": _to_attr(cents), ":one": _to_attr(1)},
        )

    def fail_refund(self, order_num: str, out_request_no: str, cents: int, reason: str) -> Tuple[bool, Optional[Order]]:
        """A pending refund Alipay does not have and refused again (refund_settle): FAILED with
        Alipay's reason, kept on record since no caller saw the answer, its cents given back."""
        return self._update(
            order_num,
            "SET refunds.#rid.#status = :failed, refunds.#rid.reason = :reason, refundedAmount = refundedAmount - :cents,"
            " pendingRefunds = if_not_exists(pendingRefunds, :one) - :one",
            "refunds.#rid.amount = :cents AND refunds.#rid.#status = :pending",
            {"#rid": out_request_no, "#status": "status"},
            {":pending": _to_attr(REFUND_PENDING), ":cents": _to_attr(cents), ":failed": _to_attr(REFUND_FAILED),
             ":reason": _to_attr(reason[:256]), ":one": _to_attr(1)},
        )

    def revive_refund(self, order_num: str, out_request_no: str, cents: int, total_cents: int, refunded_at: str) -> Tuple[bool, Optional[Order]]:
        """A refund released as FAILED that Alipay did make after all: REFUNDED, its cents counted
        again (only while they fit: refundedAmount <= total - cents)."""
        return self._update(
            order_num,
            "SET refunds.#rid.#status = :done, refunds.#rid.refundedAt = :at, refundedAmount = refundedAmount + :cents",
            "refunds.#rid.amount = :cents AND refunds.#rid.#status = :failed AND refundedAmount <= :limit",
            {"#rid": out_request_no, "#status": "status"},
            {":done": _to_attr(REFUND_DONE), ":failed": _to_attr(REFUND_FAILED), ":cents": _to_attr(cents),
             ":at": _to_attr(refunded_at), ":limit": _to_attr(total_cents - cents)},
        )

    # --- the refunds-pending index (refund_settle) -------------------------------------------------

    def pending_refund_orders(self, limit: int) -> Tuple[List[PendingRefunds], bool]:
        """Every order in the refunds-pending index (one Query per shard, never a Scan), earliest
        check first, at most ``limit``; and whether more are there."""
        rows: List[PendingRefunds] = []
        more = False
        for shard in range(RECONCILE_SHARDS):
            reply = self._client.query(
                TableName=self.table_name, IndexName=REFUNDS_INDEX, KeyConditionExpression="refundShard = :shard",
                ExpressionAttributeValues={":shard": _to_attr(shard)}, ScanIndexForward=True, Limit=limit,
            )
            rows += [PendingRefunds(
                order_num=item["orderNum"]["S"], check_at=item["refundCheckAt"]["S"],
                count=int(item.get("pendingRefunds", {}).get("N", 0)), since=item.get("pendingSince", {}).get("S"),
            ) for item in reply.get("Items", [])]
            more = more or "LastEvaluatedKey" in reply
        rows.sort(key=lambda row: (row.check_at, row.order_num))
        return rows[:limit], more or len(rows) > limit

    def recheck_refunds(self, row: PendingRefunds, check_at: str, since: str) -> bool:
        """Move the order's next refund check to ``check_at`` unless another writer moved it since."""
        applied, _ = self._update(
            row.order_num, "SET refundCheckAt = :at, pendingSince = :since", "refundCheckAt = :seen", {},
            {":at": _to_attr(check_at), ":since": _to_attr(since), ":seen": _to_attr(row.check_at)},
        )
        return applied

    def leave_refunds_index(self, order_num: str) -> bool:
        """Out of the refunds-pending index, only while no refund is pending (a new one re-enters)."""
        applied, _ = self._update(
            order_num, "REMOVE refundShard, refundCheckAt, pendingSince, pendingRefunds",
            "attribute_exists(refundCheckAt) AND (attribute_not_exists(pendingRefunds) OR pendingRefunds <= :zero)", {},
            {":zero": _to_attr(0)},
        )
        return applied


def _landed(before: Optional[Order], out_request_no: str, refund: Refund) -> bool:
    """A failed condition on our own earlier attempt: it landed, its answer was lost, botocore
    retried. The record there is exactly ours, ``attempt`` token included (None never matches)."""
    return refund.attempt is not None and before is not None and before.refunds.get(out_request_no) == refund


_repositories: Dict[Any, Any] = {}


def _per_container(cls, table_name: str):
    """One instance per class and table for the container (client and table reused)."""
    key = (cls, table_name)
    if key not in _repositories:
        _repositories[key] = cls(table_name)
    return _repositories[key]


def order_repository(table_name: str) -> DynamoOrderRepository:
    """The container's repository for ``table_name`` (client and table reused across requests)."""
    return _per_container(DynamoOrderRepository, table_name)


def reset() -> None:
    reset_clients()
    _repositories.clear()


# --- Idempotency-Key records -----------------------------------------------------------------

class DynamoIdempotencyStore:
    """``idempotency.IdempotencyStore`` on a table keyed by ``id`` (S) with TTL on ``expiration``.

    DynamoDB deletes expired items lazily (within days), so every condition also compares
    ``expiration`` with the clock: an expired record counts as absent.
    """

    def __init__(self, table_name: str, client=None) -> None:
        self.table_name = table_name
        self._client = client if client is not None else dynamodb_client()

    def claim(self, record: Record, now: int) -> Optional[Record]:
        item = {
            "id": {"S": record.id},
            "status": {"S": record.status},
            "fingerprint": {"S": record.fingerprint},
            "expiration": {"N": str(record.expiration)},
            "inProgressExpiration": {"N": str(record.in_progress_expiration)},
            # Unique per claim: two requests with equal bodies in the same second must not
            # mistake each other's record for their own retried put (see ``old == item``).
            "claim": {"S": os.urandom(16).hex()},
        }
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression=(
                    "attribute_not_exists(id) OR expiration <= :now"
                    " OR (#status = :inProgress AND inProgressExpiration <= :now)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":inProgress": {"S": record.status}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            old = exc.response.get("Item") or {}
            if not old:
                raise  # pragma: no cover - DynamoDB returns the item that failed the condition
            if old == item:
                return None  # our own retried put landed on the first attempt
            result = old.get("result", {}).get("S")
            return Record(
                id=old["id"]["S"],
                status=old["status"]["S"],
                fingerprint=old["fingerprint"]["S"],
                expiration=int(old["expiration"]["N"]),
                in_progress_expiration=int(old["inProgressExpiration"]["N"]),
                result=json.loads(result) if result else None,
            )
        return None

    def complete(self, record_id: str, result: Dict[str, str], expiration: int) -> None:
        self._client.update_item(
            TableName=self.table_name,
            Key={"id": {"S": record_id}},
            UpdateExpression="SET #status = :completed, #result = :result, expiration = :expiration",
            ConditionExpression="attribute_exists(id)",
            ExpressionAttributeNames={"#status": "status", "#result": "result"},
            ExpressionAttributeValues={
                ":completed": {"S": COMPLETED},
                ":result": {"S": json.dumps(result, ensure_ascii=False)},
                ":expiration": {"N": str(expiration)},
            },
        )

    def release(self, record_id: str) -> None:
        self._client.delete_item(
            TableName=self.table_name,
            Key={"id": {"S": record_id}},
            ConditionExpression="#status = :inProgress",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":inProgress": {"S": IN_PROGRESS}},
        )


def idempotency_store(table_name: str) -> DynamoIdempotencyStore:
    return _per_container(DynamoIdempotencyStore, table_name)
