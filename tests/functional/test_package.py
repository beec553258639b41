"""`npx serverless package` (osls, pinned in package.json) succeeds offline and ships what it should:
each function only this project's code (everything its handler imports, nothing of the tests or
the local stack), third-party code in one layer built for Lambda's platform, least-privilege IAM."""
import json
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from deploy.function_files import project_imports

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "serverless.yml").read_text(encoding="utf-8"))
FUNCTIONS = set(SPEC["functions"])
RUNTIME = SPEC["provider"]["runtime"]  # python3.12
PY_TAG = "cp" + RUNTIME.removeprefix("python").replace(".", "")  # cp312
LAYER_ZIP = "runtimeDeps.zip"
TABLE_ACTIONS = {
    "pay": ["dynamodb:GetItem", "dynamodb:PutItem"],  # GetItem: paying an order stored beforehand
    "pay_notify": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    "order_status": ["dynamodb:GetItem"],
    "add_order": ["dynamodb:PutItem"],
    "pay_return": ["dynamodb:GetItem"],
    "reconcile": [],  # the scheduled dispatcher: the reconcile index and the worker's Invoke only
    "reconcile_worker": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    "refund": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    "bill_reconcile": ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"],
    "refund_settle": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    "publish_events": [],  # the table's stream only (test_order_events_template.py)
}
FOREIGN = ("tests/", "local/", "deploy/", ".venv/", "node_modules/", "alipay/", "cryptography/", "boto3/", "botocore/", "python/")


@pytest.fixture(scope="module")
def template(packaged):
    return json.loads((packaged / "cloudformation-template-update-stack.json").read_text())["Resources"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_ships_its_own_code_and_all_it_imports(packaged, name):
    archive = packaged / f"{name}.zip"
    names = set(zipfile.ZipFile(archive).namelist())
    handler = ROOT / SPEC["functions"][name]["handler"].rsplit(".", 1)[0]
    needed = project_imports(handler.with_suffix(".py")) | {f"functions/{name}/handler.py", "functions/__init__.py", "shared/__init__.py"}
    assert needed <= names, f"{name}.zip lacks {sorted(needed - names)}"
    shipped = {n for n in names if n.startswith("shared/")}
    assert shipped == {n for n in needed if n.startswith("shared/")}, f"{name}.zip ships modules it never imports"
    assert not [n for n in names if n.startswith("functions/") and not n.startswith((f"functions/{name}/", "functions/__init__"))]
    assert not [n for n in names if n.startswith(FOREIGN) or n.endswith((".pyc", ".so")) or "__pycache__" in n]
    assert archive.stat().st_size < 100 * 1024


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_zip_alone_imports_its_handler(packaged, name, tmp_path):
    """What the zip holds is enough: its handler imports in a fresh interpreter that sees the zip's
    files and the runtime's packages, none of this checkout (as on Lambda, from /var/task)."""
    zipfile.ZipFile(packaged / f"{name}.zip").extractall(tmp_path)
    module = SPEC["functions"][name]["handler"].rsplit(".", 1)[0].replace("/", ".")
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import {module} as m; print(m.__file__)"
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(tmp_path))


def test_the_readmes_zip_size_is_the_packaged_one(packaged):
    """README's "Deploy" states the function zips' size; it must stay true as shared/ grows."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stated = int(re.search(r"each function zip holds its handler and the part of `shared/` it imports \(about (\d+) KB", readme).group(1))
    largest = max((packaged / f"{name}.zip").stat().st_size for name in FUNCTIONS) / 1024
    assert abs(largest - stated) <= 0.1 * stated, f"README says about {stated} KB; the largest zip is {largest:.1f} KB"


# Lambda's architectures: ELF e_machine, the CPython extension suffix's machine, the wheel platform's
MACHINES = {"arm64": (183, "aarch64"), "x86_64": (62, "x86_64")}


def elf_machine(data: bytes):
    """(class, machine) of an ELF file: (2, 62) is ELF64 x86-64, (2, 183) ELF64 AArch64."""
    assert data[:4] == b"\x7fELF", "not an ELF file"
    return data[4], struct.unpack("<H", data[18:20])[0]


@pytest.fixture(params=["default", "configured"])
def packaged_arch(request):
    """(package folder, its architecture): arm64 by default, x86_64 when LAMBDA_ARCH says so."""
    packaged = request.getfixturevalue("packaged" if request.param == "default" else "packaged_configured")
    functions = [r for r in json.loads((packaged / "cloudformation-template-update-stack.json").read_text())["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    (arch,) = {a for f in functions for a in f["Properties"]["Architectures"]}
    assert arch == ("arm64" if request.param == "default" else "x86_64")
    return packaged, arch


def test_the_layer_holds_the_runtime_dependencies_built_for_lambda(packaged_arch):
    packaged, arch = packaged_arch
    machine, triplet = MACHINES[arch]
    archive = packaged / LAYER_ZIP
    assert archive.stat().st_size < 10 * 1024 * 1024
    layer = zipfile.ZipFile(archive)
    names = layer.namelist()
    assert all(n.startswith("python/") for n in names)  # Lambda adds /opt/python to sys.path
    assert "python/cryptography/__init__.py" in names
    assert not [n for n in names if n.startswith(("python/boto3/", "python/botocore/", "python/alipay/", "python/moto/"))]

    extensions = [n for n in names if n.endswith(".so")]
    assert extensions, "cryptography's native code is missing"
    for name in extensions:
        assert elf_machine(layer.read(name)[:20]) == (2, machine), f"{name} is not ELF64 {arch}"
        suffix = re.search(r"\.(abi3|cpython-\d+-[a-z0-9_]+-linux-gnu)\.so$", name)
        assert suffix, f"{name}: not a CPython extension module"
        if suffix.group(1) != "abi3":
            assert suffix.group(1) == f"cpython-{PY_TAG[2:]}-{triplet}-linux-gnu", f"{name} is for another Python or machine"

    wheels = [n for n in names if n.endswith(".dist-info/WHEEL")]
    assert wheels
    for name in wheels:
        tags = [line.split(": ", 1)[1] for line in layer.read(name).decode().splitlines() if line.startswith("Tag: ")]
        assert tags and all(lambda_compatible(tag, triplet) for tag in tags), f"{name}: {tags}"


def lambda_compatible(tag: str, machine: str) -> bool:
    """A wheel tag that runs on Lambda's RUNTIME on ``machine`` (x86_64 or aarch64; Lambda's
    Amazon Linux 2023 has glibc 2.34, manylinux2014 = glibc 2.17 is what we build for)."""
    python, abi, platform = tag.split("-")
    if platform == "any":
        return python.startswith("py3") or python == PY_TAG
    glibc = re.fullmatch(rf"manylinux_2_(\d+)_{machine}|manylinux(2014|2010|1)_{machine}", platform)
    if not glibc or (glibc.group(1) and int(glibc.group(1)) > 17):
        return False
    if abi == "abi3":
        return int(python[3:]) <= int(PY_TAG[3:])
    return python == PY_TAG and abi == PY_TAG


def statements(template, role):
    return template[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_has_its_own_least_privilege_role(template, name):
    function = next(r for r in template.values() if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["FunctionName"].endswith(f"-{name}"))
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    assert function["Properties"]["Layers"] == [{"Ref": "RuntimeDepsLambdaLayer"}]
    granted = statements(template, role)
    on_table = [s for s in granted if s["Resource"] == {"Fn::GetAtt": ["OrderTable", "Arn"]}]
    assert [sorted(s["Action"]) for s in on_table] == ([TABLE_ACTIONS[name]] if TABLE_ACTIONS[name] else [])
    actions = sorted(a for s in granted for a in s["Action"])
    allowed = ("logs:", "dynamodb:", "ssm:GetParameter", "kms:Decrypt", "events:PutEvents", "sqs:SendMessage", "s3:PutObject") + (
        ("lambda:InvokeFunction",) if name == "reconcile" else ())
    assert all(a.startswith(allowed) for a in actions)
    assert not [s for s in granted if s["Resource"] == "*" or "*" in s["Action"]]
    for statement in granted:
        if statement["Action"] == ["kms:Decrypt"]:  # only through SSM, only for its own parameter
            assert set(statement["Condition"]["StringEquals"]) == {"kms:ViaService", "kms:EncryptionContext:PARAMETER_ARN"}
    roles = {r["Properties"]["Role"]["Fn::GetAtt"][0] for r in template.values() if r["Type"] == "AWS::Lambda::Function"}
    assert len(roles) == len(FUNCTIONS) and "IamRoleLambdaExecution" not in template


def test_keys_are_read_from_ssm_at_run_time_and_settings_resolved_by_cloudformation(template):
    env = {
        r["Properties"]["FunctionName"].rsplit("-", 1)[1]: r["Properties"]["Environment"]["Variables"]
        for r in template.values() if r["Type"] == "AWS::Lambda::Function"
    }
    assert env["pay"]["ALIPAY_APP_PRIVATE_KEY_SSM"] == "/alipay-app-pay/ci/app-private-key"
    assert env["pay_notify"]["ALIPAY_PUBLIC_KEY_SSM"] == "/alipay-app-pay/ci/alipay-public-key"
    assert env["pay"]["ALIPAY_APP_ID"] == "{{resolve:ssm:/alipay-app-pay/ci/app-id}}"
    assert not [v for e in env.values() for k, v in e.items() if k in ("ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY")]
    assert "${ssm:" not in (ROOT / "serverless.yml").read_text(encoding="utf-8")


def test_pay_takes_its_prices_from_the_server_unless_the_deployer_opts_out(template):
    """The deployed default is PRICE_SOURCE=catalog (a client's price only by an explicit opt-in),
    and with no catalog exported pay answers 500 rather than signing the client's price."""
    (pay,) = [r for r in template.values() if r["Type"] == "AWS::Lambda::Function"
              and r["Properties"]["FunctionName"].endswith("-pay")]
    variables = pay["Properties"]["Environment"]["Variables"]
    assert variables["PRICE_SOURCE"] == "catalog" and variables["PRODUCT_CATALOG"] == ""


def test_the_order_table_keeps_point_in_time_recovery(template):
    table = template["OrderTable"]
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == "Retain"


def test_reconcile_is_scheduled_and_queries_only_the_reconcile_index(template):
    rules = [r for r in template.values() if r["Type"] == "AWS::Events::Rule"]
    assert sorted(r["Properties"]["ScheduleExpression"] for r in rules) == sorted(["rate(5 minutes)"] * 2 + ["cron(30 2 * * ? *)"])
    assert [i["IndexName"] for i in template["OrderTable"]["Properties"]["GlobalSecondaryIndexes"]] == ["reconcile-due", "refunds-pending", "pay-day"]
    granted = [s for role in ("ReconcileRole", "ReconcileWorkerRole", "RefundRole", "RefundSettleRole") for s in statements(template, role)]
    assert "dynamodb:Scan" not in json.dumps(granted)
    for role in ("ReconcileRole", "ReconcileWorkerRole"):
        query = [s for s in statements(template, role) if s["Action"] == ["dynamodb:Query"]]
        assert len(query) == 1 and json.dumps(query[0]["Resource"]).endswith('"index", "reconcile-due"]]}')


def test_the_scheduled_reconcile_may_invoke_its_worker_and_nothing_else(template):
    invoke = [s for s in statements(template, "ReconcileRole") if "lambda:InvokeFunction" in s["Action"]]
    assert len(invoke) == 1 and invoke[0]["Action"] == ["lambda:InvokeFunction"]
    assert invoke[0]["Resource"]["Fn::Sub"].endswith(":function:alipay-app-pay-${sls:stage}-reconcile_worker".replace(
        "${sls:stage}", "ci"))
    assert not [s for r in template.values() if r["Type"] == "AWS::IAM::Role" and r is not template["ReconcileRole"]
                for p in r["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"] if "lambda:" in json.dumps(s["Action"])]
    worker = next(r for r in template.values() if r["Type"] == "AWS::Lambda::Function"
                  and r["Properties"]["FunctionName"].endswith("-reconcile_worker"))
    env = worker["Properties"]["Environment"]["Variables"]
    assert env["METRICS_SERVICE"] == "reconcile" and int(env["RECONCILE_CONCURRENCY"]) <= 32
    dispatcher = next(r for r in template.values() if r["Type"] == "AWS::Lambda::Function"
                      and r["Properties"]["FunctionName"].endswith("-reconcile"))
    assert dispatcher["Properties"]["Environment"]["Variables"]["RECONCILE_WORKER_FUNCTION"] == worker["Properties"]["FunctionName"]
    configs = [r["Properties"] for r in template.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert [c["MaximumRetryAttempts"] for c in configs] == [0]
    assert not [s for s in statements(template, "RefundRole") if "dynamodb:Query" in s["Action"]]
    query = [s for s in statements(template, "RefundSettleRole") if s["Action"] == ["dynamodb:Query"]]
    assert len(query) == 1 and json.dumps(query[0]["Resource"]).endswith('"index", "refunds-pending"]]}')


def test_a_stage_deploys_with_only_its_required_parameters(template):
    """A ``{{resolve:ssm:...}}`` reference to a parameter that does not exist fails the whole
    deploy, and SSM cannot hold an empty value: only required settings may be SSM references.
    ALIPAY_SELLER_ID is optional (shared/config.py), so it comes from the deployer's environment."""
    text = json.dumps(template)
    referenced = set(re.findall(r"\{\{resolve:ssm:/alipay-app-pay/ci/([^}:]+)\}\}", text))
    assert referenced == {"app-id"}  # the notify URL is built from the HTTP API (tests/functional/test_template.py)
    for resource in template.values():
        if resource["Type"] == "AWS::Lambda::Function":
            variables = resource["Properties"]["Environment"]["Variables"]
            for name in ("ALIPAY_SELLER_ID", "ALIPAY_RETURN_URL", "PRODUCT_CATALOG"):
                assert "{{resolve:" not in str(variables.get(name, ""))


CERT_VARIABLES = ("ALIPAY_APP_CERT", "ALIPAY_CERT", "ALIPAY_ROOT_CERT")


@pytest.mark.parametrize("name", sorted(n for n, f in SPEC["functions"].items() if set(CERT_VARIABLES) & set(f.get("environment") or {})))
def test_functions_reading_certificate_files_ship_them(name):
    """Certificate mode names its files by path (the root bundle alone nearly fills Lambda's 4 KB of
    environment), so those files must be in the function's zip: ``certs/*.crt`` (README, "Deploy")."""
    from fnmatch import fnmatchcase

    patterns = SPEC["package"]["patterns"] + SPEC["functions"][name]["package"]["patterns"]
    shipped = False
    for pattern in patterns:  # later patterns win, "!" excludes, as in the Serverless Framework
        negated = pattern.startswith("!")
        if fnmatchcase("certs/alipayRootCert.crt", pattern.lstrip("!").replace("**", "*")):
            shipped = not negated
    assert shipped, f"{name} reads {CERT_VARIABLES} but its package leaves out certs/*.crt"


def test_bill_reconcile_runs_daily_after_alipay_publishes_and_reads_by_key_or_index(template):
    """10:30 Asia/Shanghai (Alipay's bill is ready after about 09:00); BatchGetItem and the pay-day
    index only, never a Scan; the report bucket private, encrypted, versioned, retained."""
    rules = [r for r in template.values() if r["Type"] == "AWS::Events::Rule"]
    assert "cron(30 2 * * ? *)" in [r["Properties"]["ScheduleExpression"] for r in rules]
    granted = statements(template, "BillReconcileRole")
    assert "dynamodb:Scan" not in json.dumps(granted) and "s3:GetObject" not in json.dumps(granted)
    query = [s for s in granted if s["Action"] == ["dynamodb:Query"]]
    assert len(query) == 1 and json.dumps(query[0]["Resource"]).endswith('"index", "pay-day"]]}')
    [put] = [s for s in granted if s["Action"] == ["s3:PutObject"]]
    assert put["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": ["BillReportBucket", "Arn"]}, "/bills/*"]]}
    bucket = template["BillReportBucket"]
    assert bucket["DeletionPolicy"] == "Retain" and bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(bucket["Properties"]["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    alarm = template["AlarmBillDiscrepancy"]["Properties"]
    assert (alarm["MetricName"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("BillDiscrepancies", 0, "GreaterThanThreshold")
    assert alarm["Dimensions"] == [{"Name": "Service", "Value": "bill_reconcile"}] and alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert template["AlarmBillNotMatched"]["Properties"]["TreatMissingData"] == "breaching"
