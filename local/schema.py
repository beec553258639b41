"""The Order table's definition, read from serverless.yml so local runs and tests create the very
table that deploys — never a second, hand-written schema."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import yaml

ROOT = Path(__file__).resolve().parent.parent
SERVERLESS_YML = ROOT / "serverless.yml"
CREATE_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes", "StreamSpecification")


def table_properties(logical_id: str = "OrderTable") -> Dict[str, Any]:
    """The CloudFormation ``Properties`` of a table resource in serverless.yml."""
    spec = yaml.safe_load(SERVERLESS_YML.read_text(encoding="utf-8"))
    return spec["resources"]["Resources"][logical_id]["Properties"]


def create_table_kwargs(table_name: str, logical_id: str = "OrderTable") -> Dict[str, Any]:
    """Arguments for ``dynamodb.create_table`` equal to the deployed table's definition."""
    props = table_properties(logical_id)
    kwargs = {key: props[key] for key in CREATE_TABLE_KEYS if key in props}
    if "StreamSpecification" in kwargs:  # CloudFormation's form has no StreamEnabled; the API's needs it
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **kwargs["StreamSpecification"]}
    kwargs["TableName"] = table_name
    return kwargs


def create_order_table(client, table_name: str, logical_id: str = "OrderTable") -> None:
    """Create the Order table (or another of serverless.yml's tables, by logical id) on moto or
    DynamoDB Local, and wait until it is usable."""
    client.create_table(**create_table_kwargs(table_name, logical_id))
    client.get_waiter("table_exists").wait(TableName=table_name)
