from tests.security.transport import transport  # noqa: F401 - the fixture, for every test here
