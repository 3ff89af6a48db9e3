"""JSON parsing that fails like bad JSON should, whatever the input.

Python's parser raises RecursionError for deeply nested input ("[[[[…"),
which Flask's error handling does not treat as bad JSON: it became a 500.
"""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider


class SafeJSONProvider(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc
