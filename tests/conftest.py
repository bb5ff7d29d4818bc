pytest_plugins = [
    "tests.clock",
    "tests.fixtures.databases",
    "tests.fixtures.stripe",
    "tests.fixtures.mailgun",
    "tests.fixtures.s3",
]
