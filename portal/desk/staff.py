"""Changes to who can unlock the desk, each one operation for the CLI and the web
alike: ``desk.json`` changed under the desk's lock, what a removed person leaves
behind (drafts, seen marks) cleared, and the change logged by who made it."""

from __future__ import annotations

from dataclasses import dataclass

from portal.desk import casework, keystore
from portal.desk.keystore import DeskKeys, Enrolment
from portal.desk.store import DeskStore


@dataclass(frozen=True)
class Added:
    name: str  # as the desk keeps it
    enrolment: Enrolment | None  # the second factor, to show once


def add(
    store: DeskStore,
    keys: DeskKeys,
    name: str,
    passphrase: str,
    *,
    second_factor: bool = False,
    nonce: str = "",
    cost: str | None = None,
) -> Added | None:
    """Wrap the keys for a new person; None when this very form already did."""
    with store.changing():
        if casework.already_made(store, nonce) is not None:
            return None
        enrolment = keystore.add_person(
            store.home, keys, name, passphrase, second_factor=second_factor, cost=cost
        )
        casework.remember(store, nonce, "person")
    added = keystore.clean_person(name)
    store.custody.append("person", keys.person, added=added, second_factor=second_factor)
    return Added(added, enrolment)


def remove(store: DeskStore, keys: DeskKeys, name: str) -> str:
    """Remove a person at once; returns their name as the desk kept it."""
    with store.changing():
        gone = keystore.remove_person(store.home, keys, name)
        casework.forget_person(store, gone)
    store.custody.append("person", keys.person, removed=gone)
    # Their cases are nobody's now: say so, rather than point at someone who is gone.
    for case_id, work in casework.work_of(store, keys).items():
        if work.assignee == gone:
            casework.record(store, keys, case_id, "assign", "")
    return gone


def change_passphrase(store: DeskStore, keys: DeskKeys, old: str, new: str) -> None:
    """The unlocked person's own passphrase, changed."""
    with store.changing():
        keystore.change_passphrase(store.home, keys, old, new)
    store.custody.append("person", keys.person, changed_passphrase=keys.person)
