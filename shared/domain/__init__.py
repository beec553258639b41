"""The order domain: money in integer cents, Asia/Shanghai time, the order state machine, input
rules, the product catalog and the idempotency state machine.

Rule: imports the standard library and this package only — no Alipay wire format (shared.alipay),
no AWS (shared.aws), no third-party code. Everything here is testable with plain values.
"""
