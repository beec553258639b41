"""The core every function ships, in layers; each imports only those below it
(tests/unit/test_layers.py holds the rule, and that no module of shared/ imports in a circle):

- ``shared.domain``: the order domain — money, time, the state machine, input rules, catalog,
  the idempotency state machine. Standard library only: no Alipay wire format, no AWS.
- ``shared.alipay``: Alipay's protocol — signing, percent-coding, certificates, request builders,
  notify and return verification, the gateway client. Standard library, ``cryptography`` and
  ``shared.domain``: an Alipay client library with no AWS in it.
- ``shared.aws``: the adapters — DynamoDB and the SSM / Secrets Manager reads; the only place that
  imports ``boto3``/``botocore``. May use ``shared.domain`` (it stores orders), never the protocol.
- ``shared`` itself: the use cases the handlers call (payments, reconcile, refunds, status), and
  what wires them (config, secrets, environment, budgets, api, logs, return_page).
"""
import os

from . import logs

logs.setup(os.environ.get("LOG_LEVEL", "INFO"))
