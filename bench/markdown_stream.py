"""What rewriting the model's Markdown for Slack costs a streamed answer (bot/slack/markdown.py).

A 6,000-character answer with headings, links, code and two 20-row tables is fed to
`SlackMarkdown` in chunks of the given sizes, as a model streams it; prints the median time
per answer and per chunk over the runs.

    .venv/bin/python bench/markdown_stream.py [--runs 31] [--sizes 4,40]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bot.slack.markdown import SlackMarkdown

PARAGRAPH = "Some **bold** text with a [link](https://example.com) and `code`, " * 4 + "\n\n"
TABLE = "| a | b | c |\n|---|--:|:-:|\n" + "| x | 1.5 | y |\n" * 20
ANSWER = ("## Heading\n" + PARAGRAPH * 5 + TABLE + "\n" + PARAGRAPH * 5) * 2


def main() -> None:
    """Time the rewrite of ANSWER at each chunk size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--sizes", default="4,40", help="characters per chunk, comma-separated")
    args = parser.parse_args()
    print(f"answer of {len(ANSWER):,} characters, {args.runs} runs")
    for size in (int(s) for s in args.sizes.split(",")):
        chunks = [ANSWER[at : at + size] for at in range(0, len(ANSWER), size)]
        runs = []
        for _ in range(args.runs):
            started = time.perf_counter()
            markdown = SlackMarkdown()
            for chunk in chunks:
                markdown.feed(chunk)
            markdown.end()
            runs.append(time.perf_counter() - started)
        median = statistics.median(runs)
        print(
            f"chunks of {size}: {len(chunks):,} chunks, median {median * 1000:.2f} ms an answer, "
            f"{median / len(chunks) * 1e6:.1f} µs a chunk"
        )


if __name__ == "__main__":
    main()
