"""The layer the three handlers share: config, signing, orderStr, notify, money, time, orders.

Handlers parse their event, call in here, and shape the reply. Only ``repository`` touches AWS.
"""
import os

from . import logs

logs.setup(os.environ.get("LOG_LEVEL", "INFO"))
