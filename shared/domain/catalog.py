"""Price authority: the shop's own product catalog, so the client cannot name its price.

Seed 004 signs whatever ``total_amount`` the app sends; a modified app could pay 0.01 for any
product. With ``PRODUCT_CATALOG`` set, pay takes the price from this catalog, refuses products
it does not list, and refuses a client ``total_amount`` that differs (a stale or tampered app is
told so instead of being charged a price it did not show).

The catalog is a JSON file deployed with the code, not a DynamoDB table: prices change through
review and deploy like any other code, every container reads them once, and the function needs
no extra permission or network call. A shop with frequent price changes would back ``Catalog``
with a table instead; pay only sees ``Catalog.price``.

File format: ``{"products": {"<productId>": {"price": "198.01", "name": "..."}}}`` (yuan as a
decimal string; other keys are the shop's own and ignored here).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping

from . import money
from .validation import InvalidInput, PriceRefused

MAX_FILE_BYTES = 4 * 1024 * 1024


class CatalogError(ValueError):
    """The catalog file is unreadable or holds an invalid price (a configuration error)."""


@dataclass(frozen=True)
class Catalog:
    """Product id -> price in cents."""

    prices: Mapping[str, int]

    def price(self, product_id: str, client_amount: Any) -> int:
        """The price of ``product_id`` in cents; a client amount, when sent, must equal it."""
        cents = self.prices.get(product_id)
        if cents is None:
            raise PriceRefused(f"unknown productId {product_id[:64]!r}")
        if client_amount is not None and client_amount != "":
            try:
                sent = money.yuan_to_cents(client_amount)
            except money.InvalidAmount as exc:
                raise InvalidInput(str(exc)) from None
            if sent != cents:
                raise PriceRefused(
                    f"total_amount {money.cents_to_yuan(sent)} differs from the price of "
                    f"{product_id} ({money.cents_to_yuan(cents)}); refresh the product and retry"
                )
        return cents


class StoredOrdersOnly:
    """``PRICE_SOURCE=orders``: no price list at all; pay signs only orders the shop's backend
    stored beforehand (``POST /pay {"outTradeNo": ...}``), so a product request is refused."""

    def price(self, product_id: str, client_amount: Any) -> int:
        raise PriceRefused(
            "this shop takes payments for its stored orders only: send the outTradeNo of your order"
        )


def parse_catalog(document: Any) -> Catalog:
    if not isinstance(document, dict) or not isinstance(document.get("products"), dict):
        raise CatalogError('expected {"products": {"<productId>": {"price": "<yuan>"}}}')
    prices: Dict[str, int] = {}
    for product_id, entry in document["products"].items():
        if not isinstance(entry, dict) or "price" not in entry:
            raise CatalogError(f"product {product_id[:64]!r} has no price")
        try:
            prices[product_id] = money.yuan_to_cents(entry["price"], field=f"price of {product_id[:64]}")
        except money.InvalidAmount as exc:
            raise CatalogError(str(exc)) from None
    return Catalog(prices)


def load_catalog(path: Path) -> Catalog:
    """Read and validate the whole file once (a bad price fails the deploy's first request,
    not some later purchase)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CatalogError(f"cannot read {path.name}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise CatalogError(f"{path.name} is larger than {MAX_FILE_BYTES} bytes")
    try:
        document = json.loads(raw.decode("utf-8"), parse_float=lambda text: text, parse_int=lambda text: text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CatalogError(f"{path.name} is not UTF-8 JSON ({exc})") from None
    return parse_catalog(document)
