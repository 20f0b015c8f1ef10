"""docs/protocol.md (for people) and the packaged openapi.json (for machines) describe the same API.

The convention the document follows, so that this test can read it: a call table is a Markdown table whose
header starts with `call`; its first cell names calls as `` `METHOD /path` ``; in its `success` and
`failure` cells, every status is a backtick span that starts with the three-digit code (`` `401` ``,
`` `400 {"reason": "Bad arguments"}` ``). A call may take several rows; its statuses are all of theirs.
A reason is quoted as `"reason": "text"` anywhere in the document, where `[i]` stands for any index and
`...` for any text.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
CALL = re.compile(r"`(GET|PUT|POST|DELETE|OPTIONS|HEAD|PATCH|TRACE) (/[^`\s]*)`")
STATUS = re.compile(r"`([1-5][0-9]{2})(?![0-9])[^`]*`")
REASON = re.compile(r'"reason": "((?:[^"\\]|\\.)*)"')

Operation = tuple[str, str]


@pytest.fixture(scope="module")
def doc() -> str:
    return PROTOCOL_DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(resources.files("perfmon.entrypoints.http").joinpath("openapi.json").read_text())


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _tables(text: str) -> Iterator[list[dict[str, str]]]:
    """Each Markdown table of the text as rows of {header: cell}, the separator line left out."""
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2:
            header = _cells(block[0])
            yield [dict(zip(header, _cells(row), strict=True)) for row in block[2:]]
        block = []


def _documented_calls(text: str) -> dict[Operation, set[str]]:
    """(method, path) -> statuses, over every row of every call table."""
    calls: dict[Operation, set[str]] = defaultdict(set)
    for table in _tables(text):
        if not table or next(iter(table[0])) != "call":
            continue
        for row in table:
            statuses = set(STATUS.findall(row["success"] + " " + row["failure"]))
            for method, path in CALL.findall(row["call"]):
                calls[(method.lower(), path)] |= statuses
    return dict(calls)


def _described_calls(document: dict[str, Any]) -> dict[Operation, set[str]]:
    return {
        (method, path): set(operation["responses"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def _reasons_in(node: Any) -> Iterator[str]:
    """Every reason text the document shows: in example error objects, and any enum or const of `reason`."""
    if isinstance(node, dict):
        if isinstance(node.get("reason"), str):
            yield node["reason"]
        reason_schema = node.get("properties", {}).get("reason", {})
        if isinstance(reason_schema, dict):
            yield from reason_schema.get("enum", [])
            if "const" in reason_schema:
                yield reason_schema["const"]
        for value in node.values():
            yield from _reasons_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _reasons_in(value)


def _reason_pattern(quoted: str) -> re.Pattern[str]:
    """The texts a quoted reason stands for: `[i]` is any index, `...` any text."""
    pattern = re.escape(json.loads(f'"{quoted}"'))
    return re.compile(pattern.replace(r"\[i\]", r"\[[0-9]+\]").replace(r"\.\.\.", ".+"))


def test_the_document_and_openapi_json_list_the_same_calls(doc: str, document: dict[str, Any]) -> None:
    documented, described = set(_documented_calls(doc)), set(_described_calls(document))
    assert documented, "no call table found: is the document still in the convention above?"
    assert documented - described == set(), "in docs/protocol.md, missing from openapi.json"
    assert described - documented == set(), "in openapi.json, missing from docs/protocol.md"


def test_every_call_lists_the_same_statuses_in_both(doc: str, document: dict[str, Any]) -> None:
    documented, described = _documented_calls(doc), _described_calls(document)
    for call in documented.keys() & described.keys():
        assert documented[call] - described[call] == set(), (call, "status in the doc only")
        assert described[call] - documented[call] == set(), (call, "status in openapi.json only")


def test_every_reason_the_document_quotes_is_in_openapi_json(doc: str, document: dict[str, Any]) -> None:
    quoted = set(REASON.findall(doc))
    shown = set(_reasons_in(document))
    assert quoted, "no reason found: is the document still in the convention above?"
    for reason in quoted:
        pattern = _reason_pattern(reason)
        assert any(pattern.fullmatch(text) for text in shown), f"{reason!r} is not in openapi.json"


def test_every_reason_in_openapi_json_is_quoted_in_the_document(doc: str, document: dict[str, Any]) -> None:
    patterns = [_reason_pattern(reason) for reason in REASON.findall(doc)]
    for text in set(_reasons_in(document)):
        assert any(pattern.fullmatch(text) for pattern in patterns), f"{text!r} is not in docs/protocol.md"
