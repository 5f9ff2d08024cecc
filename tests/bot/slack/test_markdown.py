"""The model's Markdown rewritten for Slack, form by form, however the stream cuts it."""

from __future__ import annotations

import pytest

from bot.slack.markdown import SlackMarkdown, Tail

CHUNKINGS = (1, 2, 5, 17, 10_000)


def convert(text: str, size: int) -> tuple[str, Tail]:
    """What a reply streamed `size` characters at a time shows, and what its end leaves."""
    markdown = SlackMarkdown()
    shown = "".join(markdown.feed(text[at : at + size]) for at in range(0, len(text), size))
    return shown, markdown.end()


def shown_whole(text: str) -> str:
    """All of it as text, the same whatever the chunks (a trailing table as a code block)."""
    results = {size: convert(text, size) for size in CHUNKINGS}
    texts = {shown + tail.as_text() for shown, tail in results.values()}
    assert len(texts) == 1, texts
    return texts.pop()


@pytest.mark.parametrize(
    "text",
    [
        "Some **bold**, *italic*, _italic_, ~~gone~~ and `code`.\n",
        "See [the docs](https://example.com/a_(b)) or <https://example.com>.\n",
        "- one\n- two\n  - nested\n1. first\n2. second\n",
        "> a quote\n> on two lines\n\nAnd a #hashtag, C# and 5 | 6.\n",
        "####### seven hashes is no heading\n#no-space is no heading\n",
    ],
)
def test_what_slack_draws_passes_through_unchanged(text: str) -> None:
    assert shown_whole(text) == text


def test_plain_text_goes_out_at_once_a_possible_heading_or_table_waits_for_its_line() -> None:
    markdown = SlackMarkdown()
    assert markdown.feed("Hello **wo") == "Hello **wo"  # nothing to wait for
    assert markdown.feed("rld**\n") == "rld**\n"
    assert markdown.feed("#") == ""  # a heading, or not: the rest of the line tells
    assert markdown.feed("# Plan") == ""
    assert markdown.feed("\nNext") == "**Plan**\nNext"
    assert markdown.feed("\n|") == "\n"  # a table's first row, perhaps
    assert markdown.feed(" not a table\n") == ""
    assert markdown.feed("ok") == "| not a table\nok"  # one line with a pipe: as it was
    assert markdown.end() == Tail("")


@pytest.mark.parametrize(
    ("heading", "bold"),
    [
        ("# Title", "**Title**"),
        ("### A smaller one ###", "**A smaller one**"),
        ("## **Already** bold", "**Already bold**"),
        ("   #### Indented", "**Indented**"),
        ("#", ""),
    ],
)
def test_a_heading_becomes_a_bold_line(heading: str, bold: str) -> None:
    assert shown_whole(f"Intro\n{heading}\nBody\n") == f"Intro\n{bold}\nBody\n"


def test_fenced_code_is_left_as_written_its_language_tag_dropped() -> None:
    text = (
        "Run this:\n"
        "```python\n"
        "# a comment, not a heading\n"
        "| a | b |\n"
        "|---|---|\n"
        "print('x')  # ``` inside a line\n"
        "```\n"
        "~~~\n"
        "## also code\n"
        "~~~\n"
        "## After\n"
    )
    assert shown_whole(text) == (
        "Run this:\n"
        "```\n"
        "# a comment, not a heading\n"
        "| a | b |\n"
        "|---|---|\n"
        "print('x')  # ``` inside a line\n"
        "```\n"
        "~~~\n"
        "## also code\n"
        "~~~\n"
        "**After**\n"
    )


def test_a_code_block_the_reply_leaves_open_keeps_its_text() -> None:
    assert shown_whole("```sh\nls -la\n# still code") == "```\nls -la\n# still code"


TABLE = (
    "| Fruit | Price | Note |\n"
    "|:------|------:|:----:|\n"
    "| **Apple** | 1.20 | [fresh](https://example.com/apple) |\n"
    "| Kiwi 🥝 | 10 | |\n"
)
TABLE_AS_CODE = (
    "```\n"
    "Fruit    Price                Note\n"
    "-------  -----  ---------------------------------\n"
    "Apple     1.20  fresh (https://example.com/apple)\n"
    "Kiwi 🥝     10\n"
    "```\n"
)


def test_a_table_followed_by_text_becomes_an_aligned_code_block_in_its_place() -> None:
    shown = shown_whole(f"Prices:\n\n{TABLE}\nThat is all.\n")
    assert shown == f"Prices:\n\n{TABLE_AS_CODE}\nThat is all.\n"
    assert "|" not in shown


def test_a_table_that_ends_the_reply_is_handed_over_for_a_table_block() -> None:
    for size in CHUNKINGS:
        shown, tail = convert(f"Prices:\n\n{TABLE}\n", size)
        assert (shown, tail.text) == ("Prices:\n\n", "")
        assert tail.table is not None
        assert tail.table.block() == {
            "type": "table",
            "rows": [
                [{"type": "raw_text", "text": t} for t in ("Fruit", "Price", "Note")],
                [
                    {"type": "raw_text", "text": t}
                    for t in ("Apple", "1.20", "fresh (https://example.com/apple)")
                ],
                # Slack refuses an empty cell: a space stands in.
                [{"type": "raw_text", "text": t} for t in ("Kiwi 🥝", "10", " ")],
            ],
            "column_settings": [
                {"align": "left", "is_wrapped": True},
                {"align": "right", "is_wrapped": True},
                {"align": "center", "is_wrapped": True},
            ],
        }
        assert tail.as_text() == TABLE_AS_CODE


def test_a_table_split_across_stream_chunks_at_every_point() -> None:
    text = f"Before\n{TABLE}After\n"
    expected = f"Before\n{TABLE_AS_CODE}After\n"
    for cut in range(1, len(text)):
        markdown = SlackMarkdown()
        shown = markdown.feed(text[:cut]) + markdown.feed(text[cut:])
        assert shown + markdown.end().as_text() == expected, cut


def test_rows_are_made_as_wide_as_the_header_and_escaped_pipes_kept() -> None:
    text = "x\n| a | b |\n|---|---|\n| 1 |\n| 2 | 3 | 4 |\n| p \\| q | r |\n"
    _, tail = convert(text, 3)
    assert tail.table is not None
    assert tail.table.rows == [["1", ""], ["2", "3"], ["p | q", "r"]]


def test_what_looks_like_a_table_but_is_not_stays_as_written() -> None:
    not_tables = "| a | b |\n| c | d |\nnext\n|x|\n|--|--|--|\n"  # no delimiter row; widths differ
    assert shown_whole(not_tables) == not_tables


def test_a_table_with_nothing_before_it_or_too_big_for_a_block_is_a_code_block() -> None:
    _, alone = convert(TABLE, 5)
    assert alone.table is None and alone.text == TABLE_AS_CODE
    big = "Many:\n| n |\n|---|\n" + "".join(f"| {i} |\n" for i in range(100))
    _, tail = convert(big, 7)
    assert tail.table is None and tail.text.startswith("```\nn\n--\n0\n")


def test_two_tables_the_first_as_code_the_last_as_a_block() -> None:
    shown, tail = convert(f"One:\n{TABLE}\nTwo:\n\n{TABLE}", 4)
    assert shown == f"One:\n{TABLE_AS_CODE}\nTwo:\n\n"
    assert tail.table is not None and tail.text == ""
