"""A deploy rehearsal: the packaged service deployed into moto's CloudFormation in server mode the
way osls deploys it (the create-stack template makes the deployment bucket; the artifacts and the
compiled template are uploaded there; a change set with the template's S3 URL updates the stack),
then deployed again with a deployer's settings, then torn down as README "Deploy" says.

Every resource moto's CloudFormation models is checked against the template that declared it
(tables, roles and their policies, functions and their code, schedules and their targets, log
groups, topics), by iterating over the template: new resources are checked without editing this
file. What moto does not model (README "Deploy", "The deploy rehearsal") is checked on the template
by tests/functional/test_template.py and test_package.py."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from urllib.parse import unquote

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.cloudformation.parsing import get_model_map
from moto.server import ThreadedMotoServer

from tests import packaging

# moto warns about each type it does not model: expected, and listed in README "The deploy rehearsal"
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")

REGION = "ap-southeast-1"
STACK = f"alipay-app-pay-{packaging.STAGE}"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
README = (packaging.ROOT / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def aws():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = dict(endpoint_url=f"http://{host}:{port}", region_name=REGION,
                   aws_access_key_id="rehearsal", aws_secret_access_key="rehearsal")
    yield lambda service: boto3.client(service, **options)
    server.stop()


def deploy(aws, folder: Path) -> dict:
    """What `serverless deploy` does with a package folder; returns the template it deployed."""
    cfn, s3 = aws("cloudformation"), aws("s3")
    stacks = [s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"]
    if STACK not in stacks:
        cfn.create_stack(StackName=STACK, TemplateBody=(folder / "cloudformation-template-create-stack.json").read_text(), Capabilities=CAPABILITIES)
        cfn.get_waiter("stack_create_complete").wait(StackName=STACK, WaiterConfig={"Delay": 1})
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]}
    bucket = outputs["ServerlessDeploymentBucketName"]
    state = json.loads((folder / "serverless-state.json").read_text())
    prefix = state["package"]["artifactDirectoryName"]
    for artifact in sorted(folder.glob("*.zip")):
        s3.upload_file(str(artifact), bucket, f"{prefix}/{artifact.name}")
    template = packaging.template(folder)
    key = f"{prefix}/compiled-cloudformation-template.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(for_moto(template)).encode())
    name = f"{STACK}-change-set"
    cfn.create_change_set(StackName=STACK, ChangeSetName=name, ChangeSetType="UPDATE", Capabilities=CAPABILITIES,
                          TemplateURL=f"https://s3.amazonaws.com/{bucket}/{key}")  # osls's URL form
    cfn.get_waiter("change_set_create_complete").wait(StackName=STACK, ChangeSetName=name, WaiterConfig={"Delay": 1})
    cfn.execute_change_set(StackName=STACK, ChangeSetName=name)
    cfn.get_waiter("stack_update_complete").wait(StackName=STACK, WaiterConfig={"Delay": 1})
    cfn.delete_change_set(StackName=STACK, ChangeSetName=name)
    return template


def for_moto(template: dict) -> dict:
    """The template as moto can deploy it, changed only where moto is wrong (README, "The deploy
    rehearsal"): it does not model a function's Layers (a Ref to the layer version is None, and
    updating such a function fails inside moto), so they are left out, and test_package.py checks
    them on the template; a Ref to an EventBridge bus yields moto's bus object rather than the
    bus's name (CloudFormation's documented Ref value), so such Refs become the name."""
    names = {lid: r["Properties"]["Name"] for lid, r in template["Resources"].items() if r["Type"] == "AWS::Events::EventBus"}

    def fix(node):
        if isinstance(node, dict):
            if set(node) == {"Ref"} and node["Ref"] in names:
                return names[node["Ref"]]
            return {k: fix(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    copy = fix(json.loads(json.dumps(template)))
    for resource in copy["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            resource["Properties"].pop("Layers", None)
    return copy


def remove(aws) -> None:
    """What `serverless remove` does: empty the deployment bucket, then delete the stack."""
    cfn, s3 = aws("cloudformation"), aws("s3")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]}
    bucket = outputs["ServerlessDeploymentBucketName"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    cfn.delete_stack(StackName=STACK)
    cfn.get_waiter("stack_delete_complete").wait(StackName=STACK, WaiterConfig={"Delay": 1})


def stack_resources(aws) -> dict:
    pages = aws("cloudformation").get_paginator("list_stack_resources").paginate(StackName=STACK)
    return {r["LogicalResourceId"]: r for page in pages for r in page["StackResourceSummaries"]}


# Types moto's CloudFormation knows but does not keep through an update (README "The deploy
# rehearsal"): checked on the template only.
PARTLY_MODELLED = {
    "AWS::Lambda::LayerVersion": "a layer version replaced by an update disappears from the stack",
}


def moto_models(kind: str) -> bool:
    return kind in get_model_map() and kind not in PARTLY_MODELLED


def modelled(template) -> dict:
    return {lid: r for lid, r in template["Resources"].items() if moto_models(r["Type"])}


def literal(value):
    """A template value that needs no CloudFormation evaluation, else None."""
    return value if isinstance(value, (str, int, bool)) else None


def check_deployed(aws, template: dict, folder: Path) -> None:
    """Every modelled resource exists with the settings its template gave it."""
    resources = stack_resources(aws)
    physical = {lid: r.get("PhysicalResourceId") for lid, r in resources.items()}
    for logical_id in modelled(template):
        assert logical_id in resources, f"{logical_id} was not created"
        assert resources[logical_id]["ResourceStatus"].endswith("_COMPLETE"), resources[logical_id]
    iam, lam, ddb, events, logs, sns = (aws(s) for s in ("iam", "lambda", "dynamodb", "events", "logs", "sns"))
    for logical_id, resource in modelled(template).items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::DynamoDB::Table":
            table = ddb.describe_table(TableName=props["TableName"])["Table"]
            assert table["KeySchema"] == props["KeySchema"]
            assert sorted(table["AttributeDefinitions"], key=str) == sorted(props["AttributeDefinitions"], key=str)
            assert table["BillingModeSummary"]["BillingMode"] == props["BillingMode"]
            assert {i["IndexName"]: i["KeySchema"] for i in table.get("GlobalSecondaryIndexes", [])} == \
                   {i["IndexName"]: i["KeySchema"] for i in props.get("GlobalSecondaryIndexes", [])}
            assert table.get("DeletionProtectionEnabled", False) == props.get("DeletionProtectionEnabled", False)
        elif kind == "AWS::IAM::Role":
            role = physical[logical_id]
            assert json.loads(json.dumps(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"])) == props["AssumeRolePolicyDocument"]
            for policy in props.get("Policies", []):
                stored = iam.get_role_policy(RoleName=role, PolicyName=policy["PolicyName"])["PolicyDocument"]
                if isinstance(stored, str):  # moto's CloudFormation stores the policy as Python's repr of it
                    stored = ast.literal_eval(unquote(stored))
                assert [sorted(s["Action"]) for s in stored["Statement"]] == [sorted(s["Action"]) for s in policy["PolicyDocument"]["Statement"]]
        elif kind == "AWS::Lambda::Function":
            config = lam.get_function_configuration(FunctionName=props["FunctionName"])
            assert (config["Handler"], config["Runtime"], config["MemorySize"], config["Timeout"]) == \
                   (props["Handler"], props["Runtime"], props["MemorySize"], props["Timeout"])
            role_id = props["Role"]["Fn::GetAtt"][0]
            assert config["Role"] == iam.get_role(RoleName=physical[role_id])["Role"]["Arn"]
            variables = config["Environment"]["Variables"]
            assert set(variables) == set(props["Environment"]["Variables"])
            for name, value in props["Environment"]["Variables"].items():
                if literal(value) is not None:
                    assert variables[name] == value, name
            # the code is the uploaded artifact: same size as the zip the package made
            artifact = folder / Path(props["Code"]["S3Key"]).name
            assert config["CodeSize"] == artifact.stat().st_size, props["FunctionName"]
        elif kind == "AWS::Events::Rule":
            rule = events.describe_rule(Name=physical[logical_id])
            assert (rule["ScheduleExpression"], rule["State"]) == (props["ScheduleExpression"], props["State"])
            targets = events.list_targets_by_rule(Rule=physical[logical_id])["Targets"]
            wanted = [t["Arn"]["Fn::GetAtt"][0] for t in props["Targets"]]
            arns = [lam.get_function_configuration(FunctionName=template["Resources"][w]["Properties"]["FunctionName"])["FunctionArn"] for w in wanted]
            assert [t["Arn"] for t in targets] == arns
        elif kind == "AWS::Logs::LogGroup":
            (group,) = [g for g in logs.describe_log_groups(logGroupNamePrefix=props["LogGroupName"])["logGroups"] if g["logGroupName"] == props["LogGroupName"]]
            assert group.get("retentionInDays") == props.get("RetentionInDays")
        elif kind == "AWS::SNS::Topic":
            assert sns.get_topic_attributes(TopicArn=physical[logical_id])["Attributes"]["TopicArn"].endswith(":" + props["TopicName"])


def test_readme_names_what_moto_does_not_model(packaged, packaged_configured):
    section = README.split("**The deploy rehearsal**", 1)[1].split("\n\n", 1)[0]
    for folder in (packaged, packaged_configured):
        unmodelled = {r["Type"] for r in packaging.template(folder)["Resources"].values() if not moto_models(r["Type"])}
        assert unmodelled, "moto models everything now: update README and test_template's reasons"
        missing = [t for t in sorted(unmodelled) if f"`{t}`" not in section]
        assert not missing, f'README "The deploy rehearsal" does not name {missing}'


def test_first_deploy_then_update_then_teardown(aws, packaged, packaged_configured):
    ssm = aws("ssm")
    # README "Deploy": the stage's parameters exist before the first deploy, and nothing else does
    ssm.put_parameter(Name=f"/alipay-app-pay/{packaging.STAGE}/app-id", Type="String", Value="2021000000000001")
    for name in ("app-private-key", "alipay-public-key"):
        ssm.put_parameter(Name=f"/alipay-app-pay/{packaging.STAGE}/{name}", Type="SecureString", Value="-----BEGIN KEY-----")

    # 1. first deploy, default settings
    template = deploy(aws, packaged)
    check_deployed(aws, template, packaged)
    assert [f for f in template["Resources"].values() if f["Type"] == "AWS::Lambda::Function"], "no function deployed"
    assert [r for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"], "no schedule deployed"

    # an order in the table before the update
    ddb = aws("dynamodb")
    order_table = template["Resources"]["OrderTable"]["Properties"]["TableName"]
    arn_before = ddb.describe_table(TableName=order_table)["Table"]["TableArn"]
    ddb.put_item(TableName=order_table, Item={"orderNum": {"S": "ORDER_1_rehearsal00001"}, "status": {"N": "1"}})

    # 2. update: a deployer's settings (custom domain, JWT, x86_64, alarm email)
    updated = deploy(aws, packaged_configured)
    check_deployed(aws, updated, packaged_configured)
    assert aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert ddb.describe_table(TableName=order_table)["Table"]["TableArn"] == arn_before  # updated, not replaced
    assert ddb.get_item(TableName=order_table, Key={"orderNum": {"S": "ORDER_1_rehearsal00001"}})["Item"]["status"] == {"N": "1"}
    pay = aws("lambda").get_function_configuration(FunctionName=f"{STACK}-pay")["Environment"]["Variables"]
    assert pay["ALIPAY_NOTIFY_URL"] == packaging.CONFIGURED["PUBLIC_BASE_URL"] + "/pay/notify"

    # 3. teardown (`serverless remove`): retained tables stay, the rest go
    retained = {r["Properties"]["TableName"] for r in updated["Resources"].values()
                if r["Type"] == "AWS::DynamoDB::Table" and r.get("DeletionPolicy") == "Retain"}
    assert order_table in retained
    others = {r["Properties"]["TableName"] for r in updated["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"} - retained
    remove(aws)
    tables = set(ddb.list_tables()["TableNames"])
    assert retained <= tables and not (others & tables)
    assert not [f for f in aws("lambda").list_functions()["Functions"] if f["FunctionName"].startswith(STACK + "-")]

    # the Order table refuses deletion until protection is turned off on purpose (README's commands)
    with pytest.raises(ClientError, match="DeletionProtectionEnabled"):
        ddb.delete_table(TableName=order_table)
    ddb.update_table(TableName=order_table, DeletionProtectionEnabled=False)
    ddb.delete_table(TableName=order_table)
    assert order_table not in ddb.list_tables()["TableNames"]


def test_the_readme_teardown_commands_are_the_ones_rehearsed():
    section = README.split("\n## Deploy\n", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"aws dynamodb update-table --region \S+ --table-name \S+ --no-deletion-protection-enabled", section)
    assert re.search(r"aws dynamodb delete-table --region \S+ --table-name \S+", section)
