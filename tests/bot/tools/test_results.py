"""What a tool's words become for the model: cut to a size the context and the ledger take."""

from __future__ import annotations

from bot.tools.results import MAX_RESULT_CHARS, cut


def test_words_within_the_limit_are_kept_and_longer_ones_cut_and_said_so() -> None:
    assert cut("Order 42 shipped.") == "Order 42 shipped."
    huge = "x" * (MAX_RESULT_CHARS * 5)
    cut_down = cut(huge)
    assert cut_down.startswith("x" * MAX_RESULT_CHARS)
    assert cut_down.endswith(f"\n[cut: {len(huge):,} characters in all]")
    assert len(cut_down) < MAX_RESULT_CHARS + 50
