"""reconcile_worker — invoked asynchronously by the scheduled ``reconcile``, one per shard
(``{"shard": n}``; ``{}`` = every shard, as `make reconcile` runs it): one bounded pass over that
shard's due orders, up to ``RECONCILE_CONCURRENCY`` looks at once, within its Lambda timeout.
"""
from shared import reconcile


def handler(event, context=None):
    shards = reconcile.shards_of(event)
    return reconcile.configured_pass(shards, reconcile.time_left_of(context)).to_dict()
