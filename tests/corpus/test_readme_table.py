"""The corpus table an operator reads (docs/bad-input.md) is the one the tests run."""

from __future__ import annotations

import re
from pathlib import Path

from tests.corpus.cases import AUDIO, CASES, MESSAGE, SOURCE, markdown_table, of_kind

FRAGMENT = Path(__file__).resolve().parents[2] / "docs" / "bad-input.md"


def test_readme_lists_exactly_the_tested_cases_with_their_outcomes() -> None:
    text = FRAGMENT.read_text(encoding="utf-8")
    assert markdown_table() in text, "regenerate the table: print(tests.corpus.cases.markdown_table())"
    listed = re.findall(r"^\| `([a-z0-9_]+)` \|", text, flags=re.M)
    assert listed == [c.id for c in CASES]


def test_the_corpus_is_big_enough_and_ids_are_unique() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    assert all(of_kind(k) for k in (SOURCE, MESSAGE, AUDIO))


def test_readme_counts_match_the_table() -> None:
    text = FRAGMENT.read_text(encoding="utf-8")
    for kind in (SOURCE, MESSAGE, AUDIO):
        assert f"**{kind}** ({len(of_kind(kind))} cases)" in text, kind
