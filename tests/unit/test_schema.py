"""The Order table's status index is defined once, in serverless.yml, and the code names it."""
from local import schema
from shared import repository


def test_status_index_comes_from_serverless_yml():
    kwargs = schema.create_table_kwargs("t")
    (index,) = [i for i in kwargs["GlobalSecondaryIndexes"] if i["IndexName"] == repository.STATUS_INDEX]
    assert [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]] == [("status", "HASH"), ("orderDate", "RANGE")]
    types = {a["AttributeName"]: a["AttributeType"] for a in kwargs["AttributeDefinitions"]}
    assert types == {"orderNum": "S", "status": "N", "orderDate": "S"}
