"""Where legacy invoice PDFs are read from: the old S3 bucket or its CDN over HTTP.

Configured from the environment (read when a copy starts):

- `LEGACY_PDF_SOURCE`: `s3://<bucket>[/<prefix>]` or `https://<host>[/<prefix>]`
  (e.g. `https://billing.adventivecdn.com`). PDFs are at `<prefix>/{acct_id}/{inv_uuid}.pdf`.
- For an S3 source: `LEGACY_PDF_S3_ENDPOINT_URL` (empty = AWS), `LEGACY_PDF_S3_REGION`
  (`us-east-1`), `LEGACY_PDF_S3_ACCESS_KEY_ID`, `LEGACY_PDF_S3_SECRET_ACCESS_KEY` (empty =
  the default AWS credential chain).
- `LEGACY_PDF_HTTP_TIMEOUT`: seconds per request (30).
"""

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import boto3
import environ
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from billing_project.errors import BillingError, ExternalServiceError

env = environ.Env()


class PdfSource(Protocol):
    def fetch(self, path: str) -> bytes | None:
        """The file at `path` (relative), or None when the source does not have it."""

    def describe(self, path: str) -> str:
        """Where `path` is read from, for the manifest."""


def pdf_path(acct_id: int, inv_uuid: str) -> str:
    """The legacy layout, which R2 keeps: `{acct_id}/{inv_uuid}.pdf`."""
    return f"{acct_id}/{inv_uuid}.pdf"


def _join(prefix: str, path: str) -> str:
    return f"{prefix.strip('/')}/{path}" if prefix.strip("/") else path


@dataclass
class HttpPdfSource:
    base_url: str
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self.session = requests.Session()

    def describe(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path}"

    def fetch(self, path: str) -> bytes | None:
        url = self.describe(path)
        try:
            response = self.session.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ExternalServiceError(f"GET {url}: {exc}", service="legacy_pdf_source") from exc
        if response.status_code in (403, 404, 410):  # CloudFront answers 403 for absent keys
            return None
        if response.status_code != 200:
            raise ExternalServiceError(
                f"GET {url}: HTTP {response.status_code}", service="legacy_pdf_source"
            )
        return response.content


@dataclass
class S3PdfSource:
    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str
    access_key: str | None
    secret_key: str | None

    def __post_init__(self) -> None:
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url or None,
            region_name=self.region,
            aws_access_key_id=self.access_key or None,
            aws_secret_access_key=self.secret_key or None,
            config=BotoConfig(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 5, "mode": "standard"},
            ),
        )

    def describe(self, path: str) -> str:
        return f"s3://{self.bucket}/{_join(self.prefix, path)}"

    def fetch(self, path: str) -> bytes | None:
        key = _join(self.prefix, path)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise ExternalServiceError(
                f"{self.describe(path)}: {exc}", service="legacy_pdf_source"
            ) from exc
        except BotoCoreError as exc:
            raise ExternalServiceError(
                f"{self.describe(path)}: {exc}", service="legacy_pdf_source"
            ) from exc


def pdf_source_from_env() -> PdfSource:
    """The configured source; a BillingError naming the variable when it is unusable."""
    location = env.str("LEGACY_PDF_SOURCE", default="")
    if not location:
        raise BillingError(
            "LEGACY_PDF_SOURCE is not set: give s3://bucket/prefix or https://host/prefix",
            field="LEGACY_PDF_SOURCE",
        )
    parts = urlsplit(location)
    if parts.scheme == "s3" and parts.netloc:
        return S3PdfSource(
            bucket=parts.netloc,
            prefix=parts.path,
            endpoint_url=env.str("LEGACY_PDF_S3_ENDPOINT_URL", default="") or None,
            region=env.str("LEGACY_PDF_S3_REGION", default="us-east-1"),
            access_key=env.str("LEGACY_PDF_S3_ACCESS_KEY_ID", default="") or None,
            secret_key=env.str("LEGACY_PDF_S3_SECRET_ACCESS_KEY", default="") or None,
        )
    if parts.scheme in ("http", "https") and parts.netloc:
        return HttpPdfSource(
            base_url=location, timeout=env.float("LEGACY_PDF_HTTP_TIMEOUT", default=30.0)
        )
    raise BillingError(
        f"LEGACY_PDF_SOURCE: {location!r} is neither s3://bucket/prefix nor an http(s) URL",
        field="LEGACY_PDF_SOURCE",
    )
