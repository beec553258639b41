"""The emulator's side of the books: the trades "Alipay" knows, as Alipay's own records.

One small, thread-safe ledger keyed by out_trade_no (with an index by trade_no). Gateway methods
read and change trades only through it; issue 5 adds refunds here, issue 7 other channels.
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional

from shared.domain import clock

WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
TRADE_SUCCESS = "TRADE_SUCCESS"
TRADE_CLOSED = "TRADE_CLOSED"
TRADE_FINISHED = "TRADE_FINISHED"

BUYER_ID = "2088102177846880"
BUYER_LOGON_ID = "buy***@sandbox.com"


@dataclass
class Delivery:
    """One POST of a notify to the merchant's notify_url, as Alipay would log it."""

    attempt: int
    at: str
    http_status: Optional[int]
    answer: str  # the response body (stripped), or the network error
    acknowledged: bool  # Alipay stops retrying only on the bare word ``success``
    trade_status: str = ""  # what this notify said (TRADE_SUCCESS, TRADE_CLOSED, ...)
    refund_fee: str = ""  # a refund's notify: the trade's refunded total


@dataclass
class Trade:
    """A trade as Alipay records it. Amounts are the two-decimal strings Alipay uses."""

    out_trade_no: str
    trade_no: str
    app_id: str
    seller_id: str
    total_amount: str
    subject: str
    product_code: str
    notify_url: Optional[str]
    status: str = WAIT_BUYER_PAY
    gmt_create: str = field(default_factory=clock.alipay_timestamp)
    gmt_payment: Optional[str] = None
    gmt_close: Optional[str] = None
    buyer_id: str = BUYER_ID
    buyer_logon_id: str = BUYER_LOGON_ID
    charset: str = "utf-8"  # the pay request's: Alipay notifies the trade in it
    deliveries: List[Delivery] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)  # room for refunds and other channels

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class Ledger:
    """All trades, guarded by one lock. Callers get copies out and change trades via ``update``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._trades: Dict[str, Trade] = {}
        self._by_trade_no: Dict[str, str] = {}
        self._serial = itertools.count(1)

    def new_trade_no(self) -> str:
        """Alipay's 28-digit trade_no: the date, then 20 digits (here a serial)."""
        with self._lock:
            return clock.now().strftime("%Y%m%d") + f"{22001400000000000000 + next(self._serial):020d}"

    def transaction(self) -> threading.RLock:
        """Hold this to make several ledger calls one atomic step (``with ledger.transaction():``)."""
        return self._lock

    def add(self, trade: Trade) -> None:
        with self._lock:
            self._trades[trade.out_trade_no] = trade
            self._by_trade_no[trade.trade_no] = trade.out_trade_no

    def find(self, out_trade_no: Optional[str] = None, trade_no: Optional[str] = None) -> Optional[Trade]:
        """The trade by out_trade_no, else by trade_no (Alipay accepts either; both must agree)."""
        with self._lock:
            trade = self._trades.get(out_trade_no) if out_trade_no else None
            if trade_no:
                by_no = self._trades.get(self._by_trade_no.get(trade_no, ""))
                if trade is not None and by_no is not trade:
                    return None
                trade = by_no
            return trade

    def update(self, out_trade_no: str, change: Callable[[Trade], Any]) -> Any:
        """Apply ``change`` to the trade under the lock (atomic with respect to other callers)."""
        with self._lock:
            return change(self._trades[out_trade_no])

    def record_delivery(self, out_trade_no: str, delivery: Delivery) -> None:
        self.update(out_trade_no, lambda trade: trade.deliveries.append(delivery))

    def trades(self) -> List[Trade]:
        """Every trade, in the order they were added (a list, taken under the lock)."""
        with self._lock:
            return list(self._trades.values())

    def record_event(self, out_trade_no: Optional[str], what: str) -> None:
        """Note what happened to a trade at Alipay (a cashier step, a gateway call and its answer)
        in ``extra["events"]``, for the checkout's timeline; an unknown trade is ignored."""
        with self._lock:
            trade = self._trades.get(out_trade_no) if isinstance(out_trade_no, str) else None
            if trade is not None:
                trade.extra.setdefault("events", []).append({"at": clock.alipay_timestamp(), "what": what})

    def snapshot(self, out_trade_no: str) -> Optional[Dict[str, Any]]:
        with self._lock:
            trade = self._trades.get(out_trade_no)
            return trade.to_dict() if trade else None
