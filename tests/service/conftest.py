from tests.support.accounts import cheap_password_hashing, world  # noqa: F401  (fixtures for the API tests)
