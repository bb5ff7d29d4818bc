"""Invoice storage on R2, exercised against SeaweedFS's S3 gateway (which checks SigV4).

Invoice PDFs are private objects reached only through presigned URLs, so these tests hold the
signature, the expiry and the key to account, and pin the settings R2 needs: region "auto", no
ACL header, and no checksum headers (boto3 >= 1.36 sends them by default and R2 rejects them).
"""

import secrets
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from storages.backends.s3 import S3Storage

SentHeaders = dict[str, list[dict[str, str]]]


def _pdf_bytes() -> bytes:
    return b"%PDF-1.7\n" + secrets.token_bytes(64) + b"\n%%EOF\n"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _client_of(storage: Any) -> Any:
    return storage.connection.meta.client


@contextmanager
def _sent_headers(client: Any) -> Iterator[SentHeaders]:
    """Headers of every request `client` sends while open, by operation name, lower-cased."""
    sent: SentHeaders = defaultdict(list)

    def record(request: Any, event_name: str, **_: Any) -> None:
        headers = {key.lower(): str(value) for key, value in request.headers.items()}
        sent[event_name.rsplit(".", 1)[-1]].append(headers)

    client.meta.events.register("before-send.s3.*", record)
    try:
        yield sent
    finally:
        client.meta.events.unregister("before-send.s3.*", record)


def _checksum_headers(headers: dict[str, str]) -> set[str]:
    return {
        name
        for name in headers
        if name.startswith("x-amz-checksum-")
        or name in {"x-amz-sdk-checksum-algorithm", "x-amz-trailer"}
    }


def _storage_options(**overrides: Any) -> dict[str, Any]:
    return {**settings.STORAGES["default"]["OPTIONS"], **overrides}


def _signed_at(url: str) -> datetime:
    stamp = parse_qs(urlsplit(url).query)["X-Amz-Date"][0]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _with_query_value(url: str, name: str, value: str) -> str:
    prefix = f"{name}="
    start = url.index(prefix) + len(prefix)
    end = url.find("&", start)
    return url[:start] + value + (url[end:] if end != -1 else "")


def test_saved_invoice_is_read_back_through_its_presigned_url(s3_bucket: Any) -> None:
    content = _pdf_bytes()
    name = default_storage.save("invoices/2024/INV-1001.pdf", ContentFile(content))

    url = default_storage.url(name)

    assert "X-Amz-Signature=" in url
    assert url.startswith(f"{settings.STORAGES['default']['OPTIONS']['endpoint_url']}/")
    assert _get(url) == (200, content)


def test_presigned_url_with_an_altered_signature_is_refused(s3_bucket: Any) -> None:
    name = default_storage.save("invoices/INV-1002.pdf", ContentFile(_pdf_bytes()))
    url = default_storage.url(name)
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    altered = ("0" if signature[0] != "0" else "1") + signature[1:]

    status, _ = _get(_with_query_value(url, "X-Amz-Signature", altered))

    assert status == 403
    assert _get(url)[0] == 200


def test_presigned_url_pointed_at_another_invoice_is_refused(s3_bucket: Any) -> None:
    mine = default_storage.save("invoices/INV-1003.pdf", ContentFile(_pdf_bytes()))
    theirs = default_storage.save("invoices/INV-1004.pdf", ContentFile(_pdf_bytes()))
    url = default_storage.url(mine)
    assert f"/{mine}?" in url

    status, body = _get(url.replace(f"/{mine}?", f"/{theirs}?"))

    assert status == 403
    with default_storage.open(theirs) as stored:
        assert body != stored.read()


def test_presigned_url_is_refused_once_expired(s3_bucket: Any) -> None:
    name = default_storage.save("invoices/INV-1005.pdf", ContentFile(content := _pdf_bytes()))
    lifetime = 2
    url = default_storage.url(name, expire=lifetime)
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == [str(lifetime)]
    assert _get(url) == (200, content)

    expired_at = _signed_at(url).timestamp() + lifetime
    time.sleep(max(0.0, expired_at + 0.5 - time.time()))

    assert _get(url)[0] == 403


def test_client_with_a_wrong_secret_key_cannot_write(s3_bucket: Any) -> None:
    options = _storage_options()
    impostor = boto3.client(
        "s3",
        endpoint_url=options["endpoint_url"],
        aws_access_key_id=options["access_key"],
        aws_secret_access_key=options["secret_key"][::-1],
        region_name=options["region_name"],
        config=options["client_config"],
    )

    with pytest.raises(ClientError) as refused:
        impostor.put_object(
            Bucket=settings.R2_INVOICE_BUCKET, Key="invoices/forged.pdf", Body=b"forged"
        )

    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert s3_bucket.list_objects_v2(Bucket=settings.R2_INVOICE_BUCKET)["KeyCount"] == 0


def test_saves_send_no_checksum_headers_though_botos_default_would(s3_bucket: Any) -> None:
    boto_default = S3Storage(**_storage_options(client_config=Config()))
    with _sent_headers(_client_of(boto_default)) as sent_by_default:
        boto_default.save("invoices/INV-1006.pdf", ContentFile(_pdf_bytes()))
    assert sent_by_default["PutObject"], "the capture saw no PutObject"
    assert _checksum_headers(sent_by_default["PutObject"][0])

    with _sent_headers(_client_of(default_storage)) as sent:
        default_storage.save("invoices/INV-1007.pdf", ContentFile(_pdf_bytes()))

    assert len(sent["PutObject"]) == 1
    assert _checksum_headers(sent["PutObject"][0]) == set()


def test_saving_an_existing_name_keeps_the_first_invoice(s3_bucket: Any) -> None:
    first_content, second_content = _pdf_bytes(), _pdf_bytes()
    first = default_storage.save("invoices/INV-1008.pdf", ContentFile(first_content))

    second = default_storage.save("invoices/INV-1008.pdf", ContentFile(second_content))

    assert first == "invoices/INV-1008.pdf"
    assert second != first
    assert second.startswith("invoices/INV-1008_") and second.endswith(".pdf")
    with default_storage.open(first) as stored:
        assert stored.read() == first_content
    with default_storage.open(second) as stored:
        assert stored.read() == second_content


def test_storage_signs_for_region_auto_and_sends_no_acl(s3_bucket: Any) -> None:
    client = _client_of(default_storage)
    assert client.meta.region_name == "auto"
    assert client.meta.config.request_checksum_calculation == "when_required"
    assert client.meta.config.response_checksum_validation == "when_required"
    assert client.meta.config.signature_version == "s3v4"
    assert client.meta.config.s3["addressing_style"] == "path"

    with _sent_headers(client) as sent:
        default_storage.save("invoices/INV-1009.pdf", ContentFile(_pdf_bytes()))
    assert "X-Amz-Signature=" in default_storage.url("invoices/INV-1009.pdf")

    put = sent["PutObject"][0]
    assert "/auto/s3/aws4_request" in put["authorization"]
    assert not any(name.startswith("x-amz-grant-") or name == "x-amz-acl" for name in put)
