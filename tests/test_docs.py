"""The documentation's examples that can be checked without a network (issue 14, item 10).

The site itself is built by `make docs` (MkDocs, --strict) in .ci/run.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import REPO

JSON_BLOCKS = [
    (page.name, block)
    for page in sorted((REPO / "docs").glob("*.md"))
    for block in re.findall(r"```json\n(.*?)```", page.read_text(), re.S)
]


@pytest.mark.parametrize("page, block", JSON_BLOCKS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(JSON_BLOCKS)])
def test_json_examples_parse(page, block):
    json.loads(block)


def test_the_iam_policy_grants_what_the_service_calls():
    text = (REPO / "docs" / "providers.md").read_text()
    policy = json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert {"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListBucket"} <= actions


def test_the_readme_keeps_the_two_commands_first():
    lines = (REPO / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert block[0].startswith("make dev ") and block[1].startswith("make test ")
    assert len(lines) < 120
