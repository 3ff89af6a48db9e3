"""Things that may be used once (proof-of-work challenges, forms that submitted):
their digests, spent atomically in the database, shared by every worker and host."""

from __future__ import annotations

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from portal.common.db import Database, Prepared, Tx, connection_of
from portal.server.models import SpentToken

_SPENT: Table = SpentToken.__table__  # type: ignore[assignment]
_IS_SPENT = Prepared(select(_SPENT.c.hour).where(_SPENT.c.digest == bindparam("d")))
# Built once per dialect, run on the driver's cursor: every submission runs one or two.
_SPEND = {
    name: Prepared(
        dialect.insert(_SPENT)
        .values(digest=bindparam("d"), hour=bindparam("h"))
        .on_conflict_do_nothing()
        .returning(_SPENT.c.digest)
    )
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def spend_within(t: Tx, digest: bytes, hour: int) -> bool:
    """Mark ``digest`` spent inside the caller's transaction; False if it was spent
    before. One statement that inserts or does nothing, so two requests racing
    with one token cannot both see it unspent (the second waits for the first's
    commit), and the transaction goes on either way."""
    c = connection_of(t)
    return _SPEND[c.dialect.name].first(c, {"d": digest, "h": hour}) is not None


class SpentTokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    def spend(self, digest: bytes, hour: int) -> bool:
        """Mark ``digest`` spent; False if it was spent before (by anyone, at any time
        it is still kept)."""
        return self.db.joined(lambda c: spend_within(c, digest, hour))

    def is_spent(self, digest: bytes) -> bool:
        with self.db.reading_rows() as c:
            return _IS_SPENT.first(c, {"d": digest}) is not None

    def purge(self, before_hour: int) -> int:
        """Forget what was spent before ``before_hour``: it could no longer be used."""
        with self.db.transaction() as s:
            result = s.execute(delete(SpentToken).where(SpentToken.hour < before_hour))
        return int(result.rowcount)  # type: ignore[attr-defined]
