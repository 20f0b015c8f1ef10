"""Reading requests strictly: bounded bodies, JSON objects, typed fields. Every failure is a 4xx."""

from __future__ import annotations

import math
from typing import Any

import falcon

from perfmon.domain.errors import InvalidInput
from perfmon.domain.model import MAX_BATCH_SIZE, CpuSample
from perfmon.entrypoints.http.errors import BadArguments
from perfmon.entrypoints.http.media import MALFORMED_JSON, parse_json


def read_json_object(req: falcon.Request, max_body_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object; 413 past the limit (without reading on), 400 if not an object."""
    if req.content_length is not None and req.content_length > max_body_bytes:
        raise falcon.HTTPContentTooLarge(description="Request body too large")
    body = req.bounded_stream.read(max_body_bytes + 1)
    if len(body) > max_body_bytes:
        raise falcon.HTTPContentTooLarge(description="Request body too large")
    try:
        document = parse_json(body)
    except MALFORMED_JSON:
        raise BadArguments("the body must be JSON in UTF-8 with finite numbers a double can hold") from None
    if not isinstance(document, dict):
        raise BadArguments("the body must be a JSON object")
    return document


def require_string(document: dict[str, Any], field: str) -> str:
    """The field's value if it is a JSON string."""
    value = document.get(field)
    if not isinstance(value, str):
        raise BadArguments(f"{field} {_missing_or('must be a string', field, document)}")
    return value


def require_number(document: dict[str, Any], field: str) -> float:
    """The field's value as a float if it is a finite JSON number (booleans are not numbers)."""
    value = document.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadArguments(f"{field} {_missing_or('must be a number', field, document)}")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        raise BadArguments(f"{field} must be a finite number") from None
    if not math.isfinite(number):
        raise BadArguments(f"{field} must be a finite number")
    return number


def _missing_or(rule: str, field: str, document: dict[str, Any]) -> str:
    return rule if field in document else "is missing"


def parse_sample(document: Any) -> CpuSample:
    """A {"cpu", "time"} object as a validated CpuSample."""
    if not isinstance(document, dict):
        raise BadArguments("must be an object with a number cpu and a number time")
    return CpuSample(cpu=require_number(document, "cpu"), taken_at=require_number(document, "time"))


def parse_samples(document: Any) -> list[CpuSample]:
    """A batch: a list of 1..10,000 samples; the 400 names the first bad one, so the agent can fix it."""
    if not isinstance(document, list) or not 1 <= len(document) <= MAX_BATCH_SIZE:
        raise BadArguments(f"samples must be a list of 1..{MAX_BATCH_SIZE} samples", in_reason=True)
    samples = []
    for index, item in enumerate(document):
        try:
            samples.append(parse_sample(item))
        except (BadArguments, InvalidInput) as error:
            rule = error.detail if isinstance(error, BadArguments) else str(error)
            raise BadArguments(f"samples[{index}] {rule}", in_reason=True) from None
    return samples


def optional_float_param(req: falcon.Request, name: str) -> float | None:
    """A query parameter that, when present, must be a finite number."""
    text = req.get_param(name)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise BadArguments(f"{name} must be a number") from None
    if not math.isfinite(number):
        raise BadArguments(f"{name} must be a finite number")
    return number


def optional_choice_param(req: falcon.Request, name: str, choices: tuple[str, ...]) -> str | None:
    """A query parameter that, when present, must be one of the choices."""
    value = req.get_param(name)
    if value is not None and value not in choices:
        raise BadArguments(f"{name} must be one of {', '.join(choices)}")
    return value


def required_param(req: falcon.Request, *names: str) -> str:
    """The first of the named query parameters that is present; 400 when none is."""
    for name in names:
        value = req.get_param(name)
        if value is not None:
            return value
    raise BadArguments(f"{' or '.join(names)} is missing")
