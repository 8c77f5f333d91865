from portal.groups import bp  # noqa: F401
