"""Built browser assets: hashed file names and Subresource Integrity from the build."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from portal.common.errors import NamedError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Asset:
    url_path: str  # relative to the static folder
    integrity: str


class AssetError(NamedError, RuntimeError):
    """The browser assets were not built (run `make setup`)."""

    REASON = "assets"


def load_assets(static_dir: Path) -> dict[str, Asset]:
    """Read static/dist/manifest.json written by build.mjs."""
    path = static_dir / "dist" / "manifest.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise AssetError(f"{path} is missing: run `make setup` to build the browser code") from exc
    return {name: Asset(url_path=e["file"], integrity=e["integrity"]) for name, e in doc.items()}
