"""Alipay's asynchronous notify delivery, with its retry schedule compressed in time.

Alipay POSTs ``trade_status_sync`` to the notify_url right away and, until it reads the bare word
``success``, again after 4m, 10m, 10m, 1h, 2h, 6h and 15h (about 25 hours, seed 000). Locally
every delay is multiplied by ``time_scale`` (1/600 by default: 4 minutes become 0.4 seconds).
"""
from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from typing import Callable, Mapping, Sequence

from shared.domain import clock

from local import alipay
from local.ledger import Delivery, Ledger

log = logging.getLogger(__name__)

RETRY_DELAYS = (4 * 60, 10 * 60, 10 * 60, 60 * 60, 2 * 60 * 60, 6 * 60 * 60, 15 * 60 * 60)
DEFAULT_TIME_SCALE = 1 / 600
POST_TIMEOUT = 10.0


class Notifier:
    """Delivers signed notifies on background threads and records every attempt in the ledger."""

    def __init__(self, ledger: Ledger, time_scale: float = DEFAULT_TIME_SCALE, delays: Sequence[float] = RETRY_DELAYS) -> None:
        self.ledger = ledger
        self.time_scale = time_scale
        self.delays = tuple(delays)
        self._stop = threading.Event()

    def send(self, out_trade_no: str, url: str, sign: Callable[[], Mapping[str, str]], lost_answers: int = 0) -> threading.Thread:
        """Start delivering. ``sign`` builds a freshly signed notify per attempt (new notify_time);
        the first ``lost_answers`` answers are dropped on the way back, as on a broken connection."""
        thread = threading.Thread(
            target=self._deliver, args=(out_trade_no, url, sign, lost_answers), name=f"notify-{out_trade_no}", daemon=True
        )
        thread.start()
        return thread

    def stop(self) -> None:
        """Abandon pending retries (the server is shutting down)."""
        self._stop.set()

    def _deliver(self, out_trade_no: str, url: str, sign: Callable[[], Mapping[str, str]], lost_answers: int) -> None:
        waits = (0.0,) + tuple(delay * self.time_scale for delay in self.delays)
        for attempt, wait in enumerate(waits, start=1):
            if self._stop.wait(wait):
                return
            notify = sign()
            status, answer = post_form(url, alipay.form_body(notify), notify.get("charset", "utf-8"))
            acknowledged = answer == "success" and attempt > lost_answers
            if answer == "success" and not acknowledged:
                answer = "success (answer lost in transit)"
            delivery = Delivery(
                attempt, clock.alipay_timestamp(), status, answer, acknowledged,
                notify.get("trade_status", ""), notify.get("refund_fee", ""),
            )
            self.ledger.record_delivery(out_trade_no, delivery)
            log.info("notify %s attempt %d -> %s", delivery.trade_status, attempt, answer,
                     extra={"order_num": out_trade_no, "total_amount": notify.get("total_amount")})
            if acknowledged:
                return
        log.warning("notify %s: gave up after %d attempts", out_trade_no, len(waits))


def post_form(url: str, body: bytes, charset: str = "utf-8"):
    """POST a form as Alipay does (in the notify's charset); returns (HTTP status or None,
    stripped body or error text)."""
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": f"application/x-www-form-urlencoded; charset={charset}", "User-Agent": "Mozilla/4.0"},
    )
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT) as reply:
            return reply.status, reply.read(256).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(256).decode("utf-8", "replace").strip()
    except (urllib.error.URLError, OSError) as exc:
        return None, f"network error: {exc}"
