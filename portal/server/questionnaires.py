"""The questionnaires this portal serves, and the record of every one it served.

They are read at start from ``<branding>/questionnaires`` (the shipped default
when there is none); a bad definition stops the portal with its file and line.
Each one is kept in the database by digest, once, so inbox bundles can carry
every version a waiting report may have been answered with.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.common.db import Database
from portal.common.questionnaire import Questionnaire
from portal.server.models import QuestionnaireDefinition


def record(db: Database, served: tuple[Questionnaire, ...], today: dt.date) -> None:
    """Keep every served definition not kept yet (several workers may race: the
    digest is the key, so the loser's insert is simply not needed)."""
    for q in served:
        try:
            with db.transaction() as s:
                if s.get(QuestionnaireDefinition, q.digest) is None:
                    s.add(
                        QuestionnaireDefinition(
                            digest=q.digest,
                            form=q.id,
                            version=q.version,
                            body=q.canonical,
                            first_served=today,
                        )
                    )
        except IntegrityError:
            continue


def definitions(db: Database) -> list[tuple[str, bytes]]:
    """(digest, canonical body) of every definition ever served, oldest first."""
    with db.reading() as s:
        rows = s.execute(
            select(QuestionnaireDefinition.digest, QuestionnaireDefinition.body).order_by(
                QuestionnaireDefinition.first_served, QuestionnaireDefinition.digest
            )
        )
        return [(str(d), bytes(b)) for d, b in rows]
