pytest_plugins = [
    "tests.fixtures.databases",
    "tests.fixtures.stripe",
    "tests.fixtures.mailgun",
    "tests.fixtures.s3",
]
