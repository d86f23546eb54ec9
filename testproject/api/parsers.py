"""Request parsers of the test project."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering 400 to a body nested deeper than Python's decoder can go.

    DRF turns ``ValueError`` into a 400 but lets ``RecursionError`` through, so ``[[[[...]]]]`` in a
    request body was a 500 (and a traceback in the logs) for any client.
    """

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
