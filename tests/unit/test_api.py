"""shared.api.jwt_sub: the caller as an HTTP API JWT authorizer reports it."""
import pytest

from local import events
from shared.api import jwt_sub


def with_claims(claims):
    event = events.http_event("GET", "/orders/X")
    event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return event


def test_sub_claim_is_the_caller():
    assert jwt_sub(with_claims({"sub": "USER_1", "iss": "https://issuer"})) == "USER_1"


@pytest.mark.parametrize("claims", [{}, {"sub": ""}, {"sub": 7}, None])
def test_no_usable_sub_is_none(claims):
    assert jwt_sub(with_claims(claims)) is None


def test_no_authorizer_is_none():
    assert jwt_sub(events.http_event("GET", "/orders/X")) is None
    assert jwt_sub({}) is None
