"""The JSON body parser of every API view: DRF's, with nesting too deep to parse refused as bad input (400)."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """``json.loads`` raises RecursionError (not ValueError) on deep nesting: DRF's parser let it become a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON nested too deeply.")
