"""First-token time of the model port: the real `openai` client against a loopback endpoint.

The model adapter (`build_client` + `OpenAIChatModel`) asks the loopback fake endpoint for one
answer after another, each streamed at once, over plain HTTP and over TLS (a self-signed
certificate made with `openssl`, trusted through the client's `http_client`). Each answer is
timed from `stream()` to its first text and to its end; a short pause between two answers
lets a connection on its way back to the pool get there, as the seconds between two turns do.
Prints medians and p90 per context size, and how many connections the endpoint accepted.

    .venv/bin/python bench/model_port.py [--answers 200] [--code PATH]

`--code` runs another checkout's adapter (e.g. `--code /work/main` for the code before a
change); run it from outside both checkouts so that checkout's `bot` package is imported.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--answers", type=int, default=200)
parser.add_argument("--pause", type=float, default=0.02, help="seconds between two answers")
parser.add_argument("--chunks", type=int, default=6, help="text chunks in each answer")
parser.add_argument("--sdk", action="store_true", help="also time the client's own create()")
parser.add_argument("--code", default=str(Path(__file__).resolve().parents[1]))
args = parser.parse_args()
sys.path.insert(0, args.code)

import openai  # noqa: E402

from bot.llm.openai_chat import OpenAIChatModel, build_client  # noqa: E402
from tests.fakes import FakeOpenAI, FakeReply  # noqa: E402


class TLSFakeOpenAI(FakeOpenAI):
    """The fake endpoint behind TLS on loopback."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context

    def start(self) -> TLSFakeOpenAI:
        super().start()
        assert self._httpd is not None
        self._httpd.socket = self._context.wrap_socket(self._httpd.socket, server_side=True)
        return self

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def messages(count: int) -> list[dict[str, str]]:
    said = [{"role": "system", "content": "Be brief."}]
    for n in range(count - 1):
        role = "user" if n % 2 == 0 else "assistant"
        said.append({"role": role, "content": f"Message {n}: " + "some words of a thread " * 8})
    return said


def measure(model: FakeOpenAI, chat: OpenAIChatModel, context: int) -> tuple[list[float], ...]:
    model.default_reply = FakeReply(text="word " * args.chunks, chunk_size=5)
    said = messages(context)
    first, whole = [], []
    for _ in range(5):  # warm-up: the first connection, imports, caches
        "".join(chat.stream("gpt-4o-mini", said))
    cpu = time.process_time()
    for _ in range(args.answers):
        time.sleep(args.pause)
        started = time.perf_counter()
        stream = iter(chat.stream("gpt-4o-mini", said))
        next(stream)
        first.append(time.perf_counter() - started)
        for _ in stream:
            pass
        whole.append(time.perf_counter() - started)
    # CPU of the whole process (client and fake endpoint) per answer: less swayed by a busy
    # machine than the wall-clock figures.
    return first, whole, [(time.process_time() - cpu) / args.answers]


def measure_sdk(model: FakeOpenAI, client: openai.OpenAI) -> list[float]:
    """First-token times of the client's own `create` (what connection reuse is worth)."""
    model.default_reply = FakeReply(text="Hello there, this is the answer.", chunk_size=8)
    first = []
    for n in range(args.answers + 5):
        time.sleep(args.pause)
        started = time.perf_counter()
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi?"}], stream=True
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if n >= 5:
                    first.append(time.perf_counter() - started)
                break
        for _ in stream:
            pass
    return first


def ms(values: list[float]) -> str:
    median = statistics.median(values) * 1000
    p90 = statistics.quantiles(values, n=10)[-1] * 1000
    return f"{median:6.2f} ms (p90 {p90:6.2f})"


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        cert, key = certificate(Path(scratch))
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(cert, key)
        trust = ssl.create_default_context(cafile=str(cert))
        for label in ("http", "tls"):
            for context in (2, 60):
                fake = FakeOpenAI() if label == "http" else TLSFakeOpenAI(server)
                with fake:
                    http_client = openai.DefaultHttpxClient(verify=trust)
                    client = build_client(
                        api_key="sk-bench", base_url=fake.base_url, http_client=http_client
                    )
                    chat = OpenAIChatModel(client)
                    first, whole, cpu = measure(fake, chat, context)
                    print(
                        f"{label:4} {context:2} messages: first token {ms(first)}, "
                        f"whole answer {ms(whole)}, CPU {cpu[0] * 1000:.2f} ms, "
                        f"connections {fake.connections}"
                    )
            if not args.sdk:
                continue
            # The client alone, with and without the drain after `[DONE]` (openai-python#3440).
            for kind in ("sdk alone", "build_client"):
                fake = FakeOpenAI() if label == "http" else TLSFakeOpenAI(server)
                with fake:
                    http_client = openai.DefaultHttpxClient(verify=trust)
                    sdk_client: openai.OpenAI
                    if kind == "sdk alone":
                        sdk_client = openai.OpenAI(
                            api_key="sk-bench", base_url=fake.base_url, http_client=http_client
                        )
                    else:
                        sdk_client = build_client(
                            api_key="sk-bench", base_url=fake.base_url, http_client=http_client
                        )
                    first = measure_sdk(fake, sdk_client)
                    print(
                        f"{label:4} create(), {kind:12}: first token {ms(first)}, "
                        f"connections {fake.connections}"
                    )


if __name__ == "__main__":
    main()
