"""The AWS adapters: DynamoDB (the Order and Idempotency tables, every write conditional) and the
SSM Parameter Store / Secrets Manager reads, each call bounded by its ``CallBudget``.

Rule: the only package that imports ``boto3`` or ``botocore`` (lazily, on first use); besides them
it imports the standard library and ``shared.domain`` (the records it stores), never Alipay's
protocol or the use cases.
"""
