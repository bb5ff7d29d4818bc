"""Routes of the metering API (`POST /usage`)."""

urlpatterns: list = []
