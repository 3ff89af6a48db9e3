"""The desk's public settings: the portal's addresses, printed on invitation sheets.

They are public facts (the onion address and the web address reporters use),
kept in the desk's database in the clear, changed by an unlocked person and
logged in the custody log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy import select

from portal.common.errors import NamedError
from portal.common.languages import N_
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore, Setting

KEYS = ("onion_address", "web_address")
ONION = re.compile(r"\A(?:http://)?[a-z2-7]{56}\.onion/?\Z")
WEB = re.compile(r"\Ahttps://[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]*)?\Z")


class SettingRefused(NamedError, ValueError):
    """A setting that is not a usable address."""

    REASON = "setting_refused"


def read(store: DeskStore) -> dict[str, str]:
    with store.db.reading() as s:
        found = {row.key: row.value for row in s.scalars(select(Setting))}
    return {key: found.get(key, "") for key in KEYS}


def _checked(key: str, value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    if key == "onion_address":
        if not ONION.match(value.lower()):
            raise SettingRefused(N_("an onion address is 56 letters and digits, then .onion"))
        value = value.lower().removeprefix("http://").rstrip("/")
        return f"http://{value}"
    if not WEB.match(value):
        raise SettingRefused(N_("a web address starts with https:// and names a host"))
    return value


def write(store: DeskStore, keys: DeskKeys, values: Mapping[str, str]) -> dict[str, str]:
    """Check and keep every setting given (an empty one is cleared)."""
    clean = {key: _checked(key, values.get(key, "")) for key in KEYS if key in values}
    with store.changing(), store.db.transaction() as s:
        for key, value in clean.items():
            s.merge(Setting(key=key, value=value))
    store.custody.append("settings", keys.person, **clean)
    return read(store)
