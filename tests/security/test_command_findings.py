"""Command arguments are checked before anything runs: a CommandError naming the option, never
a traceback; `month_end_report --output` stays inside REPORTS_OUTPUT_DIR."""

import io
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from exports.models import ExportFile
from metering.usage_models import ProducerToken

pytestmark = pytest.mark.django_db(databases=["default", "legacy"])


@pytest.fixture
def reports(settings, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    settings.REPORTS_OUTPUT_DIR = folder
    return folder


def report(*args):
    call_command(
        "month_end_report", "--month", "2026-02", "--without-stripe", *args, stdout=io.StringIO()
    )


def test_a_report_is_written_inside_the_folder_and_shown_without_a_storage_link(reports):
    report("--output", "feb.xlsx", "--format", "xlsx")
    assert (reports / "feb.xlsx").stat().st_size > 0
    key = ExportFile.objects.get().key
    assert key == f"file:{reports / 'feb.xlsx'}"
    from exports.admin import download_link

    assert download_link(key) == key  # plain text, no presigned link


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("../../etc/x", "leaves the reports folder"),
        ("sub/../../x.csv", "leaves the reports folder"),
        ("/etc/x.csv", "not inside the reports folder"),
        ("missing/x.csv", "folder .* does not exist"),
    ],
)
def test_output_outside_the_folder_is_refused(reports, tmp_path, output, words):
    with pytest.raises(CommandError, match=f"--output: .*{words}"):
        report("--output", output)
    assert not (tmp_path / "etc").exists()
    assert ExportFile.objects.count() == 0


def test_a_symbolic_link_is_never_followed(reports, tmp_path):
    target = tmp_path / "elsewhere.csv"
    target.write_text("keep me")
    (reports / "link.csv").symlink_to(target)
    for args in (("--output", "link.csv"), ("--output", "link.csv", "--force")):
        with pytest.raises(CommandError, match="symbolic link"):
            report(*args, "--format", "csv")
    assert target.read_text() == "keep me"


def test_a_linked_folder_on_the_way_is_refused(reports, tmp_path):
    (tmp_path / "outside").mkdir()
    (reports / "sub").symlink_to(tmp_path / "outside")
    with pytest.raises(CommandError, match="symbolic link"):
        report("--output", "sub/x.csv", "--format", "csv")
    assert os.listdir(tmp_path / "outside") == []


def test_an_existing_file_is_kept_unless_force(reports):
    existing = reports / "feb.csv"
    existing.write_text("earlier report")
    with pytest.raises(CommandError, match="exists: pass --force"):
        report("--output", "feb.csv", "--format", "csv")
    assert existing.read_text() == "earlier report"
    report("--output", "feb.csv", "--format", "csv", "--force")
    assert existing.read_text().startswith("acct_id")


@pytest.mark.parametrize(
    ("command", "args", "words"),
    [
        ("month_end_report", ["--month", "0000-01"], "--month: the year must be"),
        ("month_end_report", ["--month", "9999-12"], "--month: the year must be"),
        ("export_invoice_history", ["--from", "0000-01"], "--from: the year must be"),
        ("export_stripe_events", ["--from", "0001-01-01"], "--from: expected a day"),
        ("reconcile", ["--date", "0001-02-01"], "the year must be 2000"),
        ("reconcile", ["--date", "2026-02-30"], "not a date"),
        ("producer_token_create", ["x" * 500], "name: at most 200"),
        ("producer_token_create", ["bad\nname"], "name: at most 200 printable"),
    ],
)
def test_bad_arguments_are_a_command_error_naming_the_option(reports, command, args, words):
    with pytest.raises(CommandError, match=words):
        call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert ProducerToken.objects.count() == 0
