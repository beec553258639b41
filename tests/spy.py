"""A DynamoDB client that records which operations a test's code used (Scan never, BatchGetItem
so many times), passing every call through to the real (moto) client."""


class Spy:
    """Wraps the DynamoDB client to record which operations were used."""

    def __init__(self, client):
        self._client, self.ops = client, []

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if callable(attr) and not name.startswith("_") and name != "exceptions":
            self.ops.append(name)
        return attr
