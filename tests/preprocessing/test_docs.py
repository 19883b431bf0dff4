"""docs/preprocessing.md stands alone and its command lines parse as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from preprocessing.cli import build_parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "preprocessing.md"
DATASET = "~/data/GroceryStoreDataset"


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if " -m preprocessing " in line]


def test_the_doc_cites_no_file_a_user_does_not_have():
    text = DOC.read_text(encoding="utf-8")
    assert "REFERENCE.md" not in text
    assert "/work/" not in text


def test_every_prepare_example_uses_the_one_dataset_path():
    prepares = [line for line in _commands() if " prepare " in line]
    assert prepares
    assert all(shlex.split(line)[4] == DATASET for line in prepares)


@pytest.mark.parametrize("line", _commands())
def test_every_command_line_parses_with_its_required_flags(line):
    without_optional = re.sub(r"\[[^\]]*\]", "", line)  # usage lines: [--prefix PREFIX]
    argv = shlex.split(without_optional)[3:]  # drop "<python> -m preprocessing"
    args = build_parser().parse_args(argv)  # a missing required flag exits 2
    assert args.command in ("prepare", "upload")
