from portal.guidelines import bp  # noqa: F401
