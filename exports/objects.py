"""Export files in the default storage (R2 through django-storages, or local files).

Files are streamed in both directions: written from a spooled temporary file (boto3 switches to
multipart upload for large ones) and hashed while read, so memory stays flat.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from django.core.files import File
from django.core.files.storage import Storage, storages

READ_CHUNK = 1024 * 1024
CONTENT_TYPES = {
    ".csv.gz": "application/gzip",
    ".jsonl.gz": "application/gzip",
    ".json": "application/json",
    ".pdf": "application/pdf",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def export_storage() -> Storage:
    return storages["default"]


@dataclass(frozen=True)
class StoredDigest:
    sha256: str
    bytes: int


def object_digest(key: str) -> StoredDigest | None:
    """The stored object's sha256 and size, read from storage; None when it does not exist."""
    storage = export_storage()
    if not storage.exists(key):
        return None
    digest = hashlib.sha256()
    size = 0
    for chunk in object_chunks(key):
        digest.update(chunk)
        size += len(chunk)
    return StoredDigest(sha256=digest.hexdigest(), bytes=size)


def object_chunks(key: str) -> Iterator[bytes]:
    with export_storage().open(key, "rb") as stored:
        while chunk := stored.read(READ_CHUNK):
            yield chunk


def object_read(key: str) -> bytes | None:
    storage = export_storage()
    if not storage.exists(key):
        return None
    with storage.open(key, "rb") as stored:
        return stored.read()


def _content_type(key: str) -> str:
    """`.csv.gz` is a gzip file to download, not CSV sent with `Content-Encoding: gzip` (which
    django-storages would set, and browsers would silently unpack)."""
    for suffix, content_type in CONTENT_TYPES.items():
        if key.endswith(suffix):
            return content_type
    return "application/octet-stream"


def object_put(key: str, content: IO[bytes]) -> None:
    """Store `content` at exactly `key`, replacing an export file that is already there.

    Only for files this app owns (history, manifests, archives); invoice PDFs use
    `object_put_new`, which never replaces anything.
    """
    storage = export_storage()
    content.seek(0)
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:
        _upload(storage, key, content)
        return
    if storage.exists(key):
        storage.delete(key)
    _save_new(storage, key, content)


def object_put_new(key: str, content: IO[bytes]) -> None:
    """Store `content` at `key`, which must not exist yet (checked just before writing)."""
    storage = export_storage()
    if storage.exists(key):
        raise FileExistsError(f"{key} is already in storage: refusing to overwrite it")
    content.seek(0)
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:
        _upload(storage, key, content)
        return
    _save_new(storage, key, content)


def _upload(storage: Storage, key: str, content: IO[bytes]) -> None:
    """boto3 streams the file and switches to a multipart upload above 8 MB."""
    location = storage.location.strip("/")
    name = f"{location}/{key}" if location else key
    storage.bucket.Object(name).upload_fileobj(
        content, ExtraArgs={"ContentType": _content_type(key)}
    )


def _save_new(storage: Storage, key: str, content: IO[bytes]) -> None:
    saved = storage.save(key, File(content, name=key.rsplit("/", 1)[-1]))
    if saved != key:
        raise RuntimeError(f"storage saved {key} as {saved}: refusing to lose track of it")


def object_url(key: str) -> str:
    """A download link (presigned on R2)."""
    return export_storage().url(key)
