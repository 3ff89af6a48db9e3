"""Things that may be used once (proof-of-work challenges, forms that submitted):
their digests, spent atomically in the database, shared by every worker and host."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from portal.common.db import Database
from portal.server.models import SpentToken


class SpentTokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    def spend(self, digest: bytes, hour: int) -> bool:
        """Mark ``digest`` spent; False if it was spent before (by anyone, at any time
        it is still kept)."""
        try:
            with self.db.transaction() as s:
                s.add(SpentToken(digest=digest, hour=hour))
        except IntegrityError:
            return False
        return True

    def is_spent(self, digest: bytes) -> bool:
        with self.db.reading() as s:
            return s.get(SpentToken, digest) is not None

    def purge(self, before_hour: int) -> int:
        """Forget what was spent before ``before_hour``: it could no longer be used."""
        with self.db.transaction() as s:
            result = s.execute(delete(SpentToken).where(SpentToken.hour < before_hour))
        return int(result.rowcount)  # type: ignore[attr-defined]
