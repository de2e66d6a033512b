from tests.people import clear_sign_in_limits, world  # noqa: F401  (fixtures)
