"""The time budgets (notify, pay, reconcile), checked as arithmetic over the configured clients (no sleeping)."""
import types

import pytest
import yaml
from botocore.retries import standard

from local import schema
from shared.aws import repository
from shared.alipay.gateway import AlipayGateway
from shared.domain.orders import RECONCILE_SHARDS
from shared.alipay.gateway import DEFAULT_TIMEOUT as GATEWAY_TIMEOUT
from shared import budgets
from shared.aws.repository import DYNAMODB, SECRETS, CallBudget
from shared.budgets import HTTP_API_TIMEOUT, NOTIFY_DEADLINE


def test_the_notify_answers_within_alipays_deadline_in_the_worst_case():
    worst = budgets.notify_worst_case_seconds()
    assert worst <= NOTIFY_DEADLINE, f"{worst:.2f}s > {NOTIFY_DEADLINE}s"


def functions():
    return yaml.safe_load(schema.SERVERLESS_YML.read_text(encoding="utf-8"))


def lambda_timeout(function):
    spec = functions()
    return spec["functions"][function].get("timeout", spec["provider"]["timeout"])


@pytest.mark.parametrize("function, worst", [("pay", budgets.pay_worst_case_seconds),
                                             ("pay_notify", budgets.notify_worst_case_seconds)])
def test_the_worst_case_ends_before_lambda_times_out(function, worst):
    """Our own answer (500 / 502 / ``fail``), never Lambda's timeout, which could cut a write in half.
    pay's figure is its longest path, precreate (tests/functional/test_budgets.py counts its calls)."""
    timeout = lambda_timeout(function)
    assert worst() < timeout, f"{function}: {worst():.1f}s >= Lambda timeout {timeout}s"


def test_every_http_function_answers_before_api_gateway_gives_up():
    for name, function in functions()["functions"].items():
        if any("httpApi" in event for event in function.get("events", [])):
            assert lambda_timeout(name) <= HTTP_API_TIMEOUT, name


def test_a_reconcile_pass_has_room_for_at_least_one_order():
    """Its start (both keys read cold, one Query per index shard) and one order at its worst fit in its timeout."""
    start = 2 * SECRETS.worst_case_seconds() + RECONCILE_SHARDS * DYNAMODB.worst_case_seconds()
    assert start + budgets.reconcile_order_worst_case_seconds() < lambda_timeout("reconcile")


def test_a_refund_settle_pass_has_room_for_at_least_one_order():
    """Its start (both keys read cold, one Query per index shard) and one order at its worst fit in its timeout."""
    start = 2 * SECRETS.worst_case_seconds() + RECONCILE_SHARDS * DYNAMODB.worst_case_seconds()
    worst = budgets.refund_settle_order_worst_case_seconds()
    assert worst == 2 * 5.0 + 4 * DYNAMODB.worst_case_seconds() + 0.5
    assert start + worst < lambda_timeout("refund_settle")


def test_the_gateway_budget_is_the_clients_own_timeout(app_keys, alipay_keys):
    """One source of truth: the arithmetic prices a gateway call at the client's timeout, which
    shared/alipay/gateway.py http_post keeps for the whole call (tests/functional/test_gateway_http.py)."""
    client = AlipayGateway(app_id="2021000000000001", private_key=app_keys.private_key,
                           alipay_public_key=alipay_keys.public_key)
    assert client.timeout == GATEWAY_TIMEOUT


def test_worst_case_adds_every_timeout_and_every_maximal_backoff():
    assert CallBudget(attempts=3, connect_timeout=1, read_timeout=2).worst_case_seconds() == 3 * 3 + 1 + 2
    assert CallBudget(attempts=1, connect_timeout=0.3, read_timeout=0.7).worst_case_seconds() == pytest.approx(1.0)


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8])
def test_our_backoff_bound_is_botocores_largest_draw(attempt):
    """Ties the arithmetic to botocore's own ExponentialBackoff (random() pinned at its maximum)."""
    backoff = standard.ExponentialBackoff(random=lambda: 1.0, service_name="dynamodb")
    context = types.SimpleNamespace(attempt_number=attempt, http_response=None, parsed_response=None,
                                    caught_exception=None, operation_model=None)
    assert backoff.delay_amount(context) <= DYNAMODB.backoff_bound(attempt)


@pytest.mark.parametrize("service, budget", [("dynamodb", DYNAMODB), ("ssm", SECRETS), ("secretsmanager", SECRETS)])
def test_the_clients_carry_the_budgeted_configuration(env, service, budget):
    client = repository.client(service)
    config = client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": budget.attempts}
    assert (config.connect_timeout, config.read_timeout) == (budget.connect_timeout, budget.read_timeout)
    assert client is repository.client(service)  # one per container
