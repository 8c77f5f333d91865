"""The declarative base shared by every model, with a naming convention Alembic can rely on."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry

from portal.core.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Models subclass `db.Model` (built on this); datetimes are aware UTC on every database."""

    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


def _now() -> datetime:
    from portal.core.clock import now

    return now()


class Timestamped:
    """Adds `created_at`, set from the portal's clock so tests can move time."""

    #: When the row was first written (UTC).
    created_at: Mapped[datetime] = mapped_column(default=_now)
