"""What the model is shown: the system prompt, then the newest turns that fit the budget."""

from __future__ import annotations

import pytest

from bot.conversations.context import Turn, build_context, estimate_tokens, strip_mentions

SYSTEM = "Be brief."


def contents(messages: list) -> list[str]:
    return [m["content"] for m in messages]


def test_the_system_prompt_comes_first_then_the_turns_in_order() -> None:
    turns = [Turn("user", "Hi", "Ann"), Turn("assistant", "Hello"), Turn("user", "Bye", "Ann")]
    assert build_context(SYSTEM, turns, max_tokens=1000) == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]


def test_trimming_keeps_the_newest_turns_that_fit() -> None:
    # Each turn: 40 characters (10 tokens) plus 4 of overhead; the system prompt 3 + 4.
    turns = [Turn("user" if n % 2 else "assistant", f"{n:02d}" * 20) for n in range(1, 11)]
    context = build_context(SYSTEM, turns, max_tokens=7 + 3 * 14)
    assert contents(context) == [SYSTEM, "09" * 20, "10" * 20]  # "08" would lead: dropped


def test_the_newest_turn_is_kept_even_over_budget() -> None:
    turns = [Turn("user", "old question"), Turn("assistant", "old answer")]
    turns.append(Turn("user", "x" * 10_000))
    assert contents(build_context(SYSTEM, turns, max_tokens=50)) == [SYSTEM, "x" * 10_000]


def test_a_trimmed_thread_does_not_open_with_an_orphan_reply() -> None:
    turns = [
        Turn("user", "q1 " * 30),
        Turn("assistant", "a1 " * 30),
        Turn("assistant", "a1 continued " * 2),
        Turn("user", "q2"),
    ]
    context = build_context(SYSTEM, turns, max_tokens=40)
    assert [m["role"] for m in context] == ["system", "user"]
    assert contents(context)[-1] == "q2"


def test_several_speakers_are_named_and_the_bot_is_not() -> None:
    turns = [
        Turn("user", "Hi", "Ann"),
        Turn("assistant", "Hello"),
        Turn("user", "And me?", "Bob"),
        Turn("user", "Who else", None),
    ]
    assert contents(build_context(SYSTEM, turns, max_tokens=1000)) == [
        SYSTEM,
        "Ann: Hi",
        "Hello",
        "Bob: And me?",
        "Who else",
    ]


def test_one_speaker_is_not_named() -> None:
    turns = [Turn("user", "Hi", "Ann"), Turn("assistant", "Hello"), Turn("user", "Ok", "Ann")]
    assert contents(build_context(SYSTEM, turns, max_tokens=1000)) == [SYSTEM, "Hi", "Hello", "Ok"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 1),
        ("abcd", 1),
        ("abcde", 2),
        ("a" * 400, 100),
        ("Ça été très compliqué", 6),  # accents are not CJK
        ("这是一个测试句子", 8),  # Chinese
        ("こんにちは、カタカナ", 10),  # Hiragana, CJK punctuation, Katakana
        ("안녕하세요", 5),  # Hangul
        ("\uff21\uff22\uff23\uff11\uff12\uff13", 6),  # fullwidth forms
        ("𠀋𠀍", 2),  # CJK extension B, outside the Basic Multilingual Plane
        ("Hello 世界, hello", 2 + 4),  # 2 ideographs, 13 other characters
    ],
)
def test_token_estimates(text: str, expected: int) -> None:
    assert estimate_tokens(text) == expected


def test_cjk_text_is_budgeted_about_a_token_a_character() -> None:
    chinese = "这是一个测试句子\uff0c用来估计令牌的数量。" * 10  # 190 characters, fullwidth comma
    assert estimate_tokens(chinese) == 190
    turns = [Turn("user", chinese), Turn("assistant", chinese), Turn("user", "好")]
    # At four characters a token both turns would fit in 200 tokens; at one, neither does.
    assert contents(build_context(SYSTEM, turns, max_tokens=200)) == [SYSTEM, "好"]


def test_mentions_of_the_bot_are_stripped_and_others_kept() -> None:
    assert strip_mentions("<@UBOT>  hello <@U2|ann>  there", "UBOT") == "hello <@U2|ann> there"
    assert strip_mentions("<@UBOT|switchboard> hi", "UBOT") == "hi"
