"""The Order table's indexes are defined once, in serverless.yml, and the code names them."""
from local import schema
from shared.aws import repository


def test_reconcile_index_comes_from_serverless_yml():
    kwargs = schema.create_table_kwargs("t")
    index, refunds = kwargs["GlobalSecondaryIndexes"]
    assert index["IndexName"] == repository.RECONCILE_INDEX
    assert [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]] == [("reconcileShard", "HASH"), ("reconcileAt", "RANGE")]
    # what a pass needs to decide without reading the item; status is not a key: the index is sparse
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status", "orderDate", "reconcileTries"]}
    types = {a["AttributeName"]: a["AttributeType"] for a in kwargs["AttributeDefinitions"]}
    assert types == {"orderNum": "S", "reconcileShard": "N", "reconcileAt": "S", "refundShard": "N", "refundCheckAt": "S"}
    # refund_settle's: the orders with a refund still PENDING, sparse too
    assert refunds["IndexName"] == repository.REFUNDS_INDEX
    assert [(k["AttributeName"], k["KeyType"]) for k in refunds["KeySchema"]] == [("refundShard", "HASH"), ("refundCheckAt", "RANGE")]
    assert refunds["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["pendingRefunds", "pendingSince"]}
