from portal.events import bp  # noqa: F401
