from portal.lists import bp  # noqa: F401
