"""reconcile — scheduled (EventBridge, every 5 minutes): how far behind reconciliation is
(``ReconcileOldestDueAge``), then one asynchronous ``reconcile_worker`` invocation per shard with
orders due, each a bounded pass within its own Lambda timeout. The event is not read.

Without ``RECONCILE_WORKER_FUNCTION`` (a bare run outside serverless.yml) it runs the pass itself.
A shard that could not be dispatched fails the invocation, so CloudWatch counts it and the next
schedule retries.
"""
import logging
import os

from shared import reconcile
from shared.config import settings
from shared.aws import lambdas
from shared.aws.repository import order_repository

log = logging.getLogger(__name__)


def handler(event, context=None):
    worker = os.environ.get(reconcile.WORKER_FUNCTION, "").strip()
    if not worker:
        return reconcile.configured_pass(reconcile.shards_of({}), reconcile.time_left_of(context)).to_dict()
    store = order_repository(settings().require("order_table").order_table)
    result = reconcile.dispatch(store, lambda shard_event: lambdas.invoke_async(worker, shard_event))
    log.info("reconcile dispatch: %s", result.to_dict())
    if result.failed:
        raise RuntimeError(f"could not invoke {worker} for shards {result.failed}")
    return result.to_dict()
