"""`npx serverless package` (osls, pinned in package.json) succeeds offline and ships what it should:
each function only this project's code (everything its handler imports, nothing of the tests or
the local stack), third-party code in one layer built for Lambda's platform, least-privilege IAM."""
import ast
import json
import re
import struct
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "serverless.yml").read_text(encoding="utf-8"))
FUNCTIONS = set(SPEC["functions"])
RUNTIME = SPEC["provider"]["runtime"]  # python3.12
PY_TAG = "cp" + RUNTIME.removeprefix("python").replace(".", "")  # cp312
LAYER_ZIP = "runtimeDeps.zip"
TABLE_ACTIONS = {
    "pay": ["dynamodb:GetItem", "dynamodb:PutItem"],
    "pay_notify": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    "order_status": ["dynamodb:GetItem"],
    "add_order": ["dynamodb:PutItem"],
    "pay_return": ["dynamodb:GetItem"],
    "reconcile": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    "refund": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    "refund_settle": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    "publish_events": [],  # the table's stream only (test_order_events_template.py)
}
FOREIGN = ("tests/", "local/", "deploy/", ".venv/", "node_modules/", "alipay/", "cryptography/", "boto3/", "botocore/", "python/")


@pytest.fixture(scope="module")
def template(packaged):
    return json.loads((packaged / "cloudformation-template-update-stack.json").read_text())["Resources"]


def project_imports(path: Path, seen=None) -> set:
    """The project files ``path`` needs: its shared/ and functions/ imports, transitively."""
    seen = set() if seen is None else seen
    package = path.parent.relative_to(ROOT).as_posix().replace("/", ".")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: up (level - 1) packages from this file's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            modules = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parents = [".".join(module.split(".")[:n]) for n in range(1, module.count(".") + 1)]  # shared.aws for shared.aws.repository
            for candidate in [ROOT / p.replace(".", "/") / "__init__.py" for p in parents] + [ROOT / (module.replace(".", "/") + ".py"), ROOT / module.replace(".", "/") / "__init__.py"]:
                rel = candidate.relative_to(ROOT).as_posix()
                if candidate.exists() and rel.startswith(("shared/", "functions/")) and rel not in seen:
                    seen.add(rel)
                    project_imports(candidate, seen)
    return seen


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_ships_its_own_code_and_all_it_imports(packaged, name):
    archive = packaged / f"{name}.zip"
    names = set(zipfile.ZipFile(archive).namelist())
    handler = ROOT / SPEC["functions"][name]["handler"].rsplit(".", 1)[0]
    needed = project_imports(handler.with_suffix(".py")) | {f"functions/{name}/handler.py", "functions/__init__.py", "shared/__init__.py"}
    assert needed <= names, f"{name}.zip lacks {sorted(needed - names)}"
    assert not [n for n in names if n.startswith("functions/") and not n.startswith((f"functions/{name}/", "functions/__init__"))]
    assert not [n for n in names if n.startswith(FOREIGN) or n.endswith((".pyc", ".so")) or "__pycache__" in n]
    assert archive.stat().st_size < 100 * 1024


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
    assert all(a.startswith(("logs:", "dynamodb:", "ssm:GetParameter", "kms:Decrypt", "events:PutEvents", "sqs:SendMessage"))
               for a in actions)
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


def test_the_order_table_keeps_point_in_time_recovery(template):
    table = template["OrderTable"]
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == "Retain"


def test_reconcile_is_scheduled_and_queries_only_the_reconcile_index(template):
    rules = [r for r in template.values() if r["Type"] == "AWS::Events::Rule"]
    assert [r["Properties"]["ScheduleExpression"] for r in rules] == ["rate(5 minutes)"] * 2  # reconcile, refund_settle
    assert [i["IndexName"] for i in template["OrderTable"]["Properties"]["GlobalSecondaryIndexes"]] == ["reconcile-due", "refunds-pending"]
    granted = [s for role in ("ReconcileRole", "RefundRole", "RefundSettleRole") for s in statements(template, role)]
    assert "dynamodb:Scan" not in json.dumps(granted)
    query = [s for s in statements(template, "ReconcileRole") if s["Action"] == ["dynamodb:Query"]]
    assert len(query) == 1 and json.dumps(query[0]["Resource"]).endswith('"index", "reconcile-due"]]}')
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
