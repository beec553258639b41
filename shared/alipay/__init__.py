"""Alipay's protocol: RSA2 signing and verification, percent-coding, certificate SNs, the request
builders (app, page, wap), notify and sync-return verification, and the open-API gateway client.

Rule: imports the standard library, ``cryptography`` and ``shared.domain`` (money, time) only — no
AWS, no use case, no configuration: settings are handed in. It could be lifted out as an Alipay
client library.
"""
