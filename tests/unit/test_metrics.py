"""shared/aws/metrics.py writes lines CloudWatch accepts as Embedded Metric Format (the spec's rules)."""
import io
import json

import pytest

from shared.aws import metrics


def check_emf(line: str) -> dict:
    """The EMF specification's rules for a root node: _aws.Timestamp (ms), CloudWatchMetrics
    directives each with a Namespace, DimensionSets whose members are root keys with string
    values, and Metrics whose names are root keys with numeric values."""
    doc = json.loads(line)
    aws = doc["_aws"]
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_600_000_000_000
    for directive in aws["CloudWatchMetrics"]:
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            assert all(isinstance(doc[name], str) for name in dimension_set)
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert isinstance(doc[metric["Name"]], (int, float)) and not isinstance(doc[metric["Name"]], bool)
            assert metric["Unit"] in metrics.UNITS
    return doc


def test_one_line_per_emit_with_the_service_and_the_given_dimensions(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "alipay-app-pay-prod-pay_notify")
    monkeypatch.setenv("METRICS_NAMESPACE", "alipay-app-pay-prod")
    out = io.StringIO()
    metrics.emit({"Notify": 1}, dimensions={"Outcome": "applied"}, properties={"orderNum": "ORDER_1"}, stream=out)
    metrics.emit({"OldestDueAge": (42.5, "Seconds")}, stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (check_emf(line) for line in lines)
    assert first["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "alipay-app-pay-prod"
    assert first["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Service"], ["Service", "Outcome"]]
    assert second["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Service"]]
    assert (first["Service"], first["Outcome"], first["Notify"], first["orderNum"]) == ("pay_notify", "applied", 1, "ORDER_1")
    assert second["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "OldestDueAge", "Unit": "Seconds"}]


@pytest.mark.parametrize("bad", [{}, {"x": (1, "Parsecs")}, {f"m{i}": 1 for i in range(101)}])
def test_documents_emf_would_drop_are_refused_here(bad):
    with pytest.raises(ValueError):
        metrics.document(bad)


def test_a_metric_cannot_shadow_a_dimension():
    with pytest.raises(ValueError):
        metrics.document({"Outcome": 1}, dimensions={"Outcome": "applied"})


def test_disabled_prints_nothing(monkeypatch, capsys):
    monkeypatch.setenv("METRICS_DISABLED", "1")
    assert metrics.emit({"Notify": 1})["Notify"] == 1
    assert capsys.readouterr().out == ""
