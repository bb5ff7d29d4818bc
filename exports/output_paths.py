"""Where `month_end_report --output` may write: inside `REPORTS_OUTPUT_DIR`, nowhere else.

A name is taken relative to that folder (an absolute path only if it lies inside it); `..`,
a symbolic link anywhere on the way (the file itself included) and an existing file (unless
`--force`) are refused. The file is opened with O_NOFOLLOW, and with O_EXCL unless
overwriting, so a link or file planted between the check and the write is refused too.
"""

import os
from pathlib import Path

from django.conf import settings

from billing_project.errors import BillingError

LOCAL_PREFIX = "file:"


def output_dir() -> Path:
    return Path(settings.REPORTS_OUTPUT_DIR).absolute()


def report_output_path(text: str, *, force: bool) -> Path:
    """The confined path for `text`; BillingError (field `--output`) naming the problem."""
    base = output_dir()
    if not text.strip() or "\x00" in text:
        raise BillingError("give a file name", field="--output")
    given = Path(text)
    if ".." in given.parts:
        raise BillingError(f"{text!r} leaves the reports folder {base}", field="--output")
    path = given if given.is_absolute() else base / given
    if not path.is_relative_to(base) or path == base:
        raise BillingError(f"{text!r} is not inside the reports folder {base}", field="--output")
    if not base.is_dir() or base.is_symlink():
        raise BillingError(f"the reports folder {base} does not exist", field="--output")
    step = base
    for part in path.relative_to(base).parts:
        step = step / part
        if step.is_symlink():
            raise BillingError(f"{step} is a symbolic link: not followed", field="--output")
    if not path.parent.is_dir():
        raise BillingError(f"folder {path.parent} does not exist", field="--output")
    if path.exists() and not force:
        raise BillingError(f"{path} exists: pass --force to overwrite it", field="--output")
    if path.exists() and not path.is_file():
        raise BillingError(f"{path} is not a regular file", field="--output")
    return path


def local_file_write(path: Path, content: bytes, *, overwrite: bool) -> None:
    """Write `content` to `path` without following a link; never replace unless `overwrite`."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, 0o640)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
