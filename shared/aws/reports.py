"""Where the daily bill's reports live: one JSON object per day in the stage's S3 bucket
(encrypted, public access blocked, versioned and retained: serverless.yml ``BillReportBucket``).

A re-run for the same day overwrites ``bills/<YYYY-MM-DD>.json``; the bucket's versioning keeps
every earlier report, so what a first run found and applied is never lost.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from .repository import client

PREFIX = "bills/"


def report_key(day: str) -> str:
    return f"{PREFIX}{day}.json"


class S3Reports:
    """put / get of one day's report; the client comes configured with ``repository.REPORTS``."""

    def __init__(self, bucket: str, s3=None) -> None:
        self.bucket = bucket
        self._s3 = s3 if s3 is not None else client("s3")

    def put(self, day: str, report: Mapping[str, Any]) -> str:
        body = json.dumps(report, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
        self._s3.put_object(
            Bucket=self.bucket, Key=report_key(day), Body=body, ContentType="application/json; charset=utf-8",
            ServerSideEncryption="AES256",
        )
        return f"s3://{self.bucket}/{report_key(day)}"

    def get(self, day: str) -> Optional[Mapping[str, Any]]:
        try:
            reply = self._s3.get_object(Bucket=self.bucket, Key=report_key(day))
        except self._s3.exceptions.NoSuchKey:
            return None
        return json.loads(reply["Body"].read())
