"""Admin sign-in is throttled (django-axes): after 5 wrong passwords for one username from one
address, even the right password is refused (429) until the cool-off ends."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

URL = "/admin/login/?next=/admin/"
PASSWORD = "correct-horse-9"
NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def operator():
    return get_user_model().objects.create_user(
        "operator", "ops@adventive.com", PASSWORD, is_staff=True
    )


def sign_in(password: str, *, address: str = "203.0.113.7", username: str = "operator"):
    client = Client(REMOTE_ADDR=address)
    return client.post(URL, {"username": username, "password": password})


def test_the_right_password_works_before_any_failure(operator):
    response = sign_in(PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_twenty_five_wrong_passwords_then_the_right_one_is_refused(operator, clock):
    answers = [sign_in(f"guess-{n}").status_code for n in range(25)]
    assert answers[:4] == [200] * 4  # the form again, with its error
    assert set(answers[4:]) == {429}
    assert sign_in(PASSWORD).status_code == 429
    # another address is not locked out by this one
    assert sign_in(PASSWORD, address="198.51.100.9").status_code == 302
    clock.move_to(NOW + timedelta(minutes=16))
    assert sign_in(PASSWORD).status_code == 302


def test_a_success_resets_the_count(operator):
    for n in range(4):
        assert sign_in(f"guess-{n}").status_code == 200
    assert sign_in(PASSWORD).status_code == 302
    for n in range(4):
        assert sign_in(f"again-{n}").status_code == 200
