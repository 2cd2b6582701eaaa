"""The request parser of the API blueprints: webargs' FlaskParser, hardened against hostile JSON.

Python's ``json.loads`` raises ``RecursionError`` (not ``JSONDecodeError``) on deeply
nested input (a few KB of ``[``), which would be a 500. Here it is what any other
malformed body is: 400 ``bad_request`` in the error shape.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import flask
from webargs.flaskparser import FlaskParser, abort


class ApiParser(FlaskParser):
    """FlaskParser whose JSON loading turns nesting too deep to parse into a 400."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError as exc:
            self._too_deep(exc)

    @staticmethod
    def _too_deep(exc: RecursionError) -> NoReturn:
        abort(400, exc=json.JSONDecodeError("nested too deeply", "", 0), messages={"json": ["Invalid JSON body."]})
