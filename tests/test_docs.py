"""Every code block of README.md and docs/*.md runs, as tests/docs_runner.py describes.

A test is named after the document, the block's index in it and the heading above it, e.g.
``test_block[docs/tutorial.md:2:3-rooms]``; ``test_types`` runs the python blocks through
``mypy --strict``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import docs_runner
from tests.docs_runner import Block

BLOCKS = docs_runner.all_blocks()
RUNNERS = {"python": docs_runner.run_python, "sh": docs_runner.run_sh, "html": docs_runner.run_html,
           "typescript": docs_runner.run_typescript}


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block(block: Block, tmp_path: Path) -> None:
    if block.lang == "nginx":
        docs_runner.check_nginx(block)
        return
    if block.lang == "yaml":
        docs_runner.check_kubernetes(block)
        return
    assert block.lang in RUNNERS, f"{block.id}: a ```{block.lang} block, which nothing here runs or checks"
    RUNNERS[block.lang](block, tmp_path)


PYTHON = [b for b in BLOCKS if b.lang == "python"]


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_types(block: Block, tmp_path: Path) -> None:
    errors = docs_runner.mypy_block(block, tmp_path)
    assert not errors, "\n".join(errors)


def test_every_document_is_read() -> None:
    """README.md and each docs/*.md are searched, and every block is found (fences are balanced)."""
    documents = {b.doc.name for b in BLOCKS}
    assert {"README.md", "tutorial.md", "testing.md", "deployment.md", "socketio.md"} <= documents
    for doc in docs_runner.DOCS:
        fences = [line for line in doc.read_text().splitlines() if line.startswith("```")]
        assert len(fences) == 2 * len([b for b in BLOCKS if b.doc == doc]), doc
