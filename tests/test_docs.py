"""The README's actions reference is generated, never edited by hand."""

from devtools.docs import README, render


def test_readme_actions_reference_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert render(text) == text, "run: .venv/bin/python -m devtools.docs"
