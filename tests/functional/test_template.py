"""The packaged CloudFormation template (offline `serverless package`), as deployed by default and
as configured by a deployer (tests/packaging.py CONFIGURED): the public API is throttled, logged
and (optionally) behind a JWT authorizer; the notify and return URLs come from the API itself; the
Order table cannot be deleted by accident; every alarm the README names exists and watches what the
handlers emit; AWS's cfn-lint finds no error. Iterates over what the template declares, so new
functions, routes and alarms are checked without editing this file."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.aws import metrics
from tests import packaging

ROOT = packaging.ROOT
README = (ROOT / "README.md").read_text(encoding="utf-8")
APP_ROUTES = ("POST /pay", "GET /orders/{outTradeNo}")  # the app's: behind the JWT authorizer when configured
PUBLIC_ROUTES = ("POST /pay/notify", "GET /pay/return")  # Alipay's and the browser's: signed by Alipay instead


class Template:
    """A packaged template with its conditions decided and intrinsic functions evaluated as far as
    an offline test can: a Ref to a resource or pseudo parameter becomes ``<Name>``."""

    def __init__(self, folder: Path) -> None:
        self.raw = packaging.template(folder)
        self.resources = self.raw["Resources"]
        self.conditions = {name: self.value(body) for name, body in self.raw.get("Conditions", {}).items()}

    def value(self, node):
        if isinstance(node, list):
            return [v for v in (self.value(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else f"<{arg}>"
            if key == "Fn::Equals":
                a, b = self.value(arg)
                return a == b
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.conditions[name] else no)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(p) for p in self.value(parts))
            if key == "Fn::Split":
                sep, text = self.value(arg)
                return text.split(sep)
            if key == "Fn::GetAtt":
                return f"<{arg[0]}.{arg[1]}>"
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}

    def deployed(self):
        """(logical id, evaluated resource) of what CloudFormation would create."""
        for logical_id, resource in self.resources.items():
            if self.conditions.get(resource.get("Condition"), True):
                yield logical_id, self.value(resource)

    def of_type(self, kind):
        return {lid: r for lid, r in self.deployed() if r["Type"] == kind}

    def functions(self):
        """short name (pay_notify) -> evaluated function resource"""
        return {r["Properties"]["FunctionName"].rsplit("-", 1)[1]: r for r in self.of_type("AWS::Lambda::Function").values()}

    def routes(self):
        """route key -> evaluated route resource"""
        return {r["Properties"]["RouteKey"]: r for r in self.of_type("AWS::ApiGatewayV2::Route").values()}


NO_VALUE = object()


@pytest.fixture(scope="module")
def default(packaged):
    return Template(packaged)


@pytest.fixture(scope="module")
def configured(packaged_configured):
    return Template(packaged_configured)


# --- the public API is protected ------------------------------------------------------------------

def stage(template):
    (stage,) = template.of_type("AWS::ApiGatewayV2::Stage").values()
    return stage["Properties"]


def test_the_http_api_stage_throttles_every_route_by_default_and_as_configured(default, configured):
    for template, rate, burst in ((default, 50, 100), (configured, 20, 40)):
        settings = stage(template)["DefaultRouteSettings"]
        assert (int(settings["ThrottlingRateLimit"]), int(settings["ThrottlingBurstLimit"])) == (rate, burst)
        # no per-route override lifts a route out of the default's limits
        assert not stage(template).get("RouteSettings")


def test_without_an_issuer_every_route_is_open_and_no_authorizer_is_deployed(default):
    assert not default.of_type("AWS::ApiGatewayV2::Authorizer")
    for key, route in default.routes().items():
        assert route["Properties"].get("AuthorizationType", "NONE") == "NONE", key
        assert "AuthorizerId" not in route["Properties"], key


def test_with_an_issuer_the_app_routes_require_a_jwt_and_alipays_stay_public(configured):
    (authorizer_id, authorizer), = configured.of_type("AWS::ApiGatewayV2::Authorizer").items()
    props = authorizer["Properties"]
    assert props["AuthorizerType"] == "JWT" and props["IdentitySource"] == ["$request.header.Authorization"]
    assert props["JwtConfiguration"] == {
        "Issuer": packaging.CONFIGURED["JWT_ISSUER"],
        "Audience": packaging.CONFIGURED["JWT_AUDIENCE"].split(","),
    }
    assert props["ApiId"] == "<HttpApi>"
    routes = configured.routes()
    assert set(APP_ROUTES) | set(PUBLIC_ROUTES) <= set(routes)
    for key in APP_ROUTES:
        assert routes[key]["Properties"]["AuthorizationType"] == "JWT", key
        assert routes[key]["Properties"]["AuthorizerId"] == f"<{authorizer_id}>", key
    for key in PUBLIC_ROUTES:
        assert routes[key]["Properties"].get("AuthorizationType", "NONE") == "NONE", key


def test_the_stage_writes_json_access_logs_to_a_log_group_with_retention(default):
    settings = stage(default)["AccessLogSettings"]
    group_id = re.fullmatch(r"<(\w+)\.Arn>", settings["DestinationArn"]).group(1)
    group = default.resources[group_id]
    assert group["Type"] == "AWS::Logs::LogGroup" and group["Properties"]["RetentionInDays"] > 0
    fields = json.loads(settings["Format"])  # one JSON object per request
    assert {"requestId", "ip", "requestTime", "routeKey", "status", "integrationLatency", "errorMessage"} <= set(fields)
    assert all(v.startswith("$context.") for v in fields.values())
    # nothing a caller sends beyond the route: no query string, header or body
    assert not [v for v in fields.values() if re.search(r"querystring|header|body|\$request", v, re.I)]


def test_the_order_table_is_protected_from_deletion(default):
    table = default.resources["OrderTable"]
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_idempotency_records_expire_by_ttl_on_the_attribute_the_code_writes(default):
    """moto ignores TTL (README, "The deploy rehearsal"), so the template is the place to check it."""
    ttl = default.resources["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"]
    stored = (ROOT / "shared" / "aws" / "repository.py").read_text(encoding="utf-8")
    assert ttl["Enabled"] is True and f'"{ttl["AttributeName"]}": {{"N": ' in stored  # epoch seconds, a Number


# --- the first deploy works in one pass -----------------------------------------------------------

def route_of(template, function):
    """The route key whose integration invokes ``function`` (short name)."""
    logical = {lid: r for lid, r in template.of_type("AWS::Lambda::Function").items()}
    target = next(lid for lid, r in logical.items() if r["Properties"]["FunctionName"].endswith(f"-{function}"))
    integrations = {lid for lid, r in template.of_type("AWS::ApiGatewayV2::Integration").items()
                    if target in json.dumps(r["Properties"]["IntegrationUri"])}
    (key,) = [k for k, r in template.routes().items() if any(f"integrations/<{i}>" == r["Properties"]["Target"] for i in integrations)]
    return key.split(" ", 1)[1]


@pytest.mark.parametrize("variable, function", [("ALIPAY_NOTIFY_URL", "pay_notify"), ("ALIPAY_RETURN_URL", "pay_return")])
def test_notify_and_return_urls_are_the_apis_own_unless_a_custom_domain_is_given(default, configured, variable, function):
    api_url = "https://<HttpApi>.execute-api.<AWS::Region>.<AWS::URLSuffix>"
    assert default.value(default.raw["Outputs"]["HttpApiUrl"]["Value"]) == api_url  # what `serverless info` shows
    path = route_of(default, function)
    assert default.functions()["pay"]["Properties"]["Environment"]["Variables"][variable] == api_url + path
    assert configured.functions()["pay"]["Properties"]["Environment"]["Variables"][variable] == packaging.CONFIGURED["PUBLIC_BASE_URL"] + path
    # and nothing the first deploy needs is a parameter that only exists after it
    assert "notify-url" not in json.dumps(default.raw) and "return-url" not in json.dumps(default.raw)


def test_functions_and_layer_run_on_arm64_by_default_and_x86_64_when_chosen(default, configured):
    for template, arch in ((default, "arm64"), (configured, "x86_64")):
        assert {tuple(f["Properties"]["Architectures"]) for f in template.functions().values()} == {(arch,)}
        for layer in template.of_type("AWS::Lambda::LayerVersion").values():
            assert layer["Properties"]["CompatibleArchitectures"] == [arch]


def stage_settings_problems(settings):
    script = "console.log(JSON.stringify(require('./deploy/stage-settings.js').problems(JSON.parse(process.argv[1]))))"
    out = subprocess.run(["node", "-e", script, json.dumps(settings)], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("settings, problem", [
    ({"LAMBDA_ARCH": "aarch64"}, "LAMBDA_ARCH must be arm64 or x86_64"),
    ({"JWT_ISSUER": "https://issuer.example.com"}, "JWT_AUDIENCE must be set with JWT_ISSUER"),
    ({"JWT_ISSUER": "http://issuer.example.com", "JWT_AUDIENCE": "a"}, "JWT_ISSUER must be the issuer URL"),
    ({"JWT_AUDIENCE": "a"}, "JWT_ISSUER must be set with JWT_AUDIENCE"),
    ({"PUBLIC_BASE_URL": "https://pay.example.com/"}, "PUBLIC_BASE_URL must be https://host"),
    ({"PUBLIC_BASE_URL": "https://pay.example.com/pay/notify?x=1"}, "PUBLIC_BASE_URL must be https://host"),
    ({"API_THROTTLE_RATE": "0"}, "API_THROTTLE_RATE must be a whole number"),
    ({"API_THROTTLE_BURST": "1e3"}, "API_THROTTLE_BURST must be a whole number"),
    ({"ALARM_NOTIFY_FAIL_PERCENT": "100"}, "ALARM_NOTIFY_FAIL_PERCENT must be a whole percentage"),
])
def test_a_bad_deployer_setting_is_refused_before_packaging_with_one_clear_line(settings, problem):
    found = stage_settings_problems(settings)
    assert len(found) == 1 and found[0].startswith(problem), found


def test_the_documented_settings_are_accepted_and_a_bad_one_stops_the_package(tmp_path):
    assert stage_settings_problems(packaging.CONFIGURED) == []
    result = packaging.run_package(tmp_path / "out", {"PUBLIC_BASE_URL": "https://pay.example.com/"})
    assert result.returncode != 0 and "PUBLIC_BASE_URL must be https://host" in result.stdout + result.stderr
    assert not (tmp_path / "out").exists()


# --- alarms ---------------------------------------------------------------------------------------

def readme_alarms():
    """Logical ids in the README's alarm tables (the "Alarms" section's, and those next to the
    feature that owns an alarm); ``Alarm<Function>Errors`` rows stand for one per function."""
    assert "\n## Alarms\n" in README
    return re.findall(r"^\| `(Alarm[A-Za-z<>]+)` \|", README, re.M)


def pascal(name):
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[^A-Za-z0-9]+", name))


def expected_alarms(template):
    names = set()
    for row in readme_alarms():
        if "<Function>" in row:
            names |= {row.replace("<Function>", pascal(f)) for f in template.functions()}
        else:
            names.add(row)
    return names


def test_every_alarm_the_readme_names_is_in_the_template_and_every_alarm_has_a_row(default, configured):
    assert readme_alarms(), "README has no Alarms table"
    for template in (default, configured):
        alarms = template.of_type("AWS::CloudWatch::Alarm")
        assert set(alarms) == expected_alarms(template)
        for logical_id, alarm in alarms.items():
            props = alarm["Properties"]
            assert props["AlarmActions"] == ["<AlarmTopic>"], logical_id
            assert props["TreatMissingData"] in ("notBreaching", "breaching"), logical_id
            assert props["AlarmDescription"] and props["AlarmName"].startswith("alipay-app-pay-ci-"), logical_id
    assert template.of_type("AWS::SNS::Topic").keys() == {"AlarmTopic"}
    (subscription,) = configured.of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"] == {"TopicArn": "<AlarmTopic>", "Protocol": "email", "Endpoint": packaging.CONFIGURED["ALARM_EMAIL"]}
    assert not default.of_type("AWS::SNS::Subscription")  # no address, no subscription


def test_every_function_has_an_errors_and_a_throttles_alarm(default):
    functions = default.of_type("AWS::Lambda::Function")
    alarms = default.of_type("AWS::CloudWatch::Alarm").values()
    for logical_id in functions:
        watched = {a["Properties"]["MetricName"] for a in alarms
                   if a["Properties"].get("Namespace") == "AWS/Lambda"
                   and a["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": f"<{logical_id}>"}]}
        assert watched == {"Errors", "Throttles"}, logical_id


def alarm_metrics(alarm):
    """(namespace, metric name, {dimension: value}) of every metric an alarm reads."""
    props = alarm["Properties"]
    if "Metrics" in props:
        stats = [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]
    else:
        stats = [props]
    return [(s["Namespace"], s["MetricName"], {d["Name"]: d["Value"] for d in s.get("Dimensions", [])}) for s in stats]


def test_each_alarm_on_our_metrics_watches_a_metric_set_that_an_emf_line_publishes(default, monkeypatch):
    """Build the EMF line shared/aws/metrics.py prints for that metric with those dimensions, as
    the function would (its METRICS_NAMESPACE, its Service), and check CloudWatch would publish
    exactly the namespace, name and dimension set the alarm reads."""
    namespaces = {f["Properties"]["Environment"]["Variables"]["METRICS_NAMESPACE"] for f in default.functions().values()}
    assert namespaces == {"alipay-app-pay-ci"}
    ours = [(lid, m) for lid, a in default.of_type("AWS::CloudWatch::Alarm").items() for m in alarm_metrics(a) if not m[0].startswith("AWS/")]
    assert {m[1] for _, m in ours} >= {"Notify", "NotifyFail", "ReconcileOldestDueAge", "RefundOldestPendingAge"}
    for logical_id, (namespace, name, dims) in ours:
        assert namespace in namespaces, logical_id
        assert "Service" in dims, f"{logical_id}: every EMF line is published under Service"
        monkeypatch.setenv("METRICS_NAMESPACE", namespace)
        monkeypatch.setenv("METRICS_SERVICE", dims["Service"])
        extra = {k: v for k, v in dims.items() if k != "Service"}
        doc = metrics.document({name: 1}, dimensions=extra)
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        published = {(directive["Namespace"], m["Name"], frozenset((d, doc[d]) for d in dimset))
                     for m in directive["Metrics"] for dimset in directive["Dimensions"]}
        assert (namespace, name, frozenset(dims.items())) in published, logical_id


def test_the_notify_alarms_watch_the_documented_outcomes(default):
    watched = {m[2].get("Outcome") for a in default.of_type("AWS::CloudWatch::Alarm").values() for m in alarm_metrics(a) if m[1] == "Notify"}
    assert {"bad_signature", "amount_mismatch"} <= watched
    (rate,) = [a for a in default.of_type("AWS::CloudWatch::Alarm").values() if "Metrics" in a["Properties"]
               and {m[1] for m in alarm_metrics(a)} == {"Notify", "NotifyFail"}]
    expression = next(m["Expression"] for m in rate["Properties"]["Metrics"] if m.get("ReturnData"))
    assert "100 * failed / notifies" in expression


# --- cfn-lint -------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["packaged", "packaged_configured"])
def test_cfn_lint_finds_no_error_in_the_packaged_template(request, which):
    folder = request.getfixturevalue(which)
    paths = [str(folder / "cloudformation-template-update-stack.json"), str(folder / "cloudformation-template-create-stack.json")]
    cfn_lint = Path(sys.executable).with_name("cfn-lint")  # pinned in requirements-dev.txt
    result = subprocess.run([str(cfn_lint), "--format", "json", *paths], capture_output=True, text=True, timeout=300)
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)
    assert result.returncode & 2 == 0, result.stderr  # cfn-lint's exit bit for errors


def test_every_function_has_the_memory_size_the_readme_chose(default):
    chosen = re.search(r"Memory size: \*\*(\d+) MB\*\* for every function", README)
    assert chosen, 'README "Deploy" states the memory size'
    assert {f["Properties"]["MemorySize"] for f in default.functions().values()} == {int(chosen.group(1))}
