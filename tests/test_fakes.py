"""The loopback fakes must work with the real slack_sdk and openai clients."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionUserMessageParam
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.fakes.slack_oauth import FakeWorkspace


@pytest.fixture
def slack() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlackAPI) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.base_url)


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def oai(llm: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=5)


# ----- Slack -------------------------------------------------------------------------------


def test_auth_test_and_token_recorded(client: WebClient, slack: FakeSlackAPI) -> None:
    result = client.auth_test()
    assert (result["team_id"], result["user_id"], result["bot_id"]) == ("T0001", "UBOT", "BBOT")
    (call,) = slack.calls_to("auth.test")
    assert call.token == "xoxb-test"


def test_post_message_records_args_and_returns_increasing_ts(
    client: WebClient, slack: FakeSlackAPI
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    first = client.chat_postMessage(channel="C1", text="hi", blocks=blocks, thread_ts="1.000001")
    second = client.chat_postMessage(channel="C1", text="again")
    assert first["channel"] == "C1"
    assert first["message"]["blocks"] == blocks
    assert first["message"]["thread_ts"] == "1.000001"
    assert len(first["ts"].split(".")[1]) == 6
    assert float(second["ts"]) > float(first["ts"])
    calls = slack.wait_for("chat.postMessage", count=2)
    assert calls[0].args["text"] == "hi"
    assert calls[0].arg("blocks") == blocks
    assert calls[0].response["ts"] == first["ts"]


def test_users_info_registry_generic_and_missing(client: WebClient, slack: FakeSlackAPI) -> None:
    slack.add_user("UADMIN", name="ada", real_name="Ada L", email="ada@x.io", is_admin=True)
    slack.missing_users.add("UGONE")
    admin = client.users_info(user="UADMIN")["user"]
    assert (admin["name"], admin["is_admin"], admin["profile"]["email"]) == (
        "ada",
        True,
        "ada@x.io",
    )
    generic = client.users_info(user="U123")["user"]
    assert (generic["name"], generic["is_admin"]) == ("u123", False)
    with pytest.raises(SlackApiError) as err:
        client.users_info(user="UGONE")
    assert err.value.response["error"] == "user_not_found"


def test_conversations_and_misc_methods(client: WebClient, slack: FakeSlackAPI) -> None:
    slack.add_channel("C9", name="random")
    assert client.conversations_info(channel="C9")["channel"]["name"] == "random"
    assert client.conversations_info(channel="C1")["channel"]["name"] == "general"
    assert client.conversations_open(users="U42")["channel"]["id"] == "DU42"
    assert client.chat_postEphemeral(channel="C1", user="U1", text="psst")["message_ts"]
    assert client.chat_update(channel="C1", ts="1.000100", text="edited")["ts"] == "1.000100"
    assert client.chat_delete(channel="C1", ts="1.000100")["ok"]
    assert client.assistant_threads_setStatus(channel_id="D1", thread_ts="1.1", status="typing")
    assert client.views_publish(user_id="U1", view={"type": "home", "blocks": []})["ok"]
    assert client.api_call("some.unknownMethod")["ok"]
    slack.respond("conversations.replies", lambda args: {"messages": [{"ts": args["ts"]}]})
    replies = client.conversations_replies(channel="C1", ts="5.000001")
    assert replies["messages"] == [{"ts": "5.000001"}]


def test_chat_stream_helper(client: WebClient, slack: FakeSlackAPI) -> None:
    stream = client.chat_stream(
        channel="C1",
        thread_ts="1.000001",
        recipient_team_id="T0001",
        recipient_user_id="U1",
        buffer_size=4,
    )
    stream.append(markdown_text="Hello ")
    stream.append(markdown_text="world")
    stream.stop(markdown_text="!")
    (start,) = slack.calls_to("chat.startStream")
    assert start.args["recipient_user_id"] == "U1"
    assert start.headers["Content-Type"].startswith("application/json")
    assert stream.ts == start.response["ts"]
    assert slack.wait_for("chat.stopStream")[0].args["ts"] == stream.ts
    assert stream.ts is not None
    assert slack.streamed_text(stream.ts) == "Hello world!"


def test_streaming_in_a_channel_needs_the_recipient(client: WebClient, slack: FakeSlackAPI) -> None:
    with pytest.raises(SlackApiError, match="missing_recipient_team_id"):
        client.chat_startStream(channel="C1", thread_ts="1.000001", recipient_user_id="U1")
    with pytest.raises(SlackApiError, match="missing_recipient_user_id"):
        client.chat_startStream(channel="C1", thread_ts="1.000001", recipient_team_id="T0001")
    dm = client.chat_startStream(channel="D1", thread_ts="1.000001", markdown_text="hi")
    assert slack.open_streams() == [dm["ts"]]


def test_only_a_streaming_message_takes_appends_and_stops(
    client: WebClient, slack: FakeSlackAPI
) -> None:
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        client.chat_appendStream(channel="D1", ts="1.000100", markdown_text="never started")
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        client.chat_stopStream(channel="D1", ts="1.000100")
    ts = client.chat_startStream(channel="D1", thread_ts="1.000001", markdown_text="a")["ts"]
    client.chat_appendStream(channel="D1", ts=ts, markdown_text="b")
    client.chat_stopStream(channel="D1", ts=ts, markdown_text="c")
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        client.chat_appendStream(channel="D1", ts=ts, markdown_text="after the end")
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        client.chat_stopStream(channel="D1", ts=ts)
    assert slack.streamed_text(ts) == "abc"  # refused text is not shown
    assert slack.open_streams() == []


def test_stream_text_over_12000_characters_is_refused(
    client: WebClient, slack: FakeSlackAPI
) -> None:
    start: dict[str, Any] = {"channel": "D1", "thread_ts": "1.000001"}
    with pytest.raises(SlackApiError, match="msg_too_long"):
        client.chat_startStream(**start, markdown_text="x" * 12_001)
    assert slack.open_streams() == []
    ts = client.chat_startStream(**start, markdown_text="x" * 12_000)["ts"]
    with pytest.raises(SlackApiError, match="msg_too_long"):
        client.chat_appendStream(channel="D1", ts=ts, markdown_text="y" * 12_001)
    with pytest.raises(SlackApiError, match="msg_too_long"):
        client.chat_stopStream(channel="D1", ts=ts, markdown_text="z" * 12_001)
    assert slack.open_streams() == [ts]  # a refused stop leaves it streaming
    client.chat_stopStream(channel="D1", ts=ts)
    assert slack.open_streams() == []
    chunk = {"type": "markdown_text", "text": "x" * 12_001}
    with pytest.raises(SlackApiError, match="msg_too_long"):
        client.chat_startStream(**start, chunks=[chunk])  # ChatStream sends its text so


def test_open_streams_lists_what_was_started_and_not_stopped(
    client: WebClient, slack: FakeSlackAPI
) -> None:
    recipient: dict[str, Any] = {"recipient_team_id": "T0001", "recipient_user_id": "U1"}
    first = client.chat_startStream(channel="C1", thread_ts="1.000001", **recipient)["ts"]
    second = client.chat_startStream(channel="C1", thread_ts="2.000001", **recipient)["ts"]
    client.chat_stopStream(channel="C1", ts=first)
    assert slack.open_streams() == [second]
    slack.reset()
    assert slack.open_streams() == []


def test_files_upload_v2_stores_bytes(client: WebClient, slack: FakeSlackAPI) -> None:
    payload = b"line one\n\x00\xffbinary"
    result = client.files_upload_v2(
        channel="C1", content=payload, filename="log.txt", title="Log", thread_ts="1.000001"
    )
    assert result["file"]["title"] == "Log"
    file_id = result["file"]["id"]
    assert slack.uploads[file_id] == payload
    (complete,) = slack.calls_to("files.completeUploadExternal")
    assert complete.arg("files")[0]["id"] == file_id
    assert complete.args["thread_ts"] == "1.000001"


def test_upload_endpoint_accepts_multipart(slack: FakeSlackAPI) -> None:
    boundary = "XyZ"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + b"\x00\x01data\r\n"
        + f"--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{slack.url}/upload/F1",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.read() == b"OK - 6"
    assert slack.uploads["F1"] == b"\x00\x01data"


def test_failure_injection_and_delay(client: WebClient, slack: FakeSlackAPI) -> None:
    slack.fail("chat.postMessage", "ratelimited", times=1, status=429, retry_after=7)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert client.chat_postMessage(channel="C1", text="x")["ok"]
    slack.fail("chat.update", "not_allowed_token_type")
    for _ in range(2):
        with pytest.raises(SlackApiError, match="not_allowed_token_type"):
            client.chat_update(channel="C1", ts="1.1", text="y")
    slack.delay("auth.test", 0.2)
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.2
    assert len(slack.calls_to("chat.update")) == 2


def test_response_url_and_wait_for_timeout(slack: FakeSlackAPI) -> None:
    url = slack.response_url("cmd1")
    request = urllib.request.Request(
        url, data=b'{"text": "done", "response_type": "ephemeral"}', method="POST"
    )
    request.add_header("Content-Type", "application/json")
    threading.Thread(target=lambda: urllib.request.urlopen(request, timeout=5).read()).start()
    assert slack.wait_for_response(timeout=5) == [
        ("cmd1", {"text": "done", "response_type": "ephemeral"})
    ]
    with pytest.raises(AssertionError, match=r"chat\.postMessage"):
        slack.wait_for("chat.postMessage", timeout=0.05)
    slack.reset()
    assert slack.calls == [] and slack.responses == []


# ----- OpenAI ------------------------------------------------------------------------------

QUESTION = "What is the answer to everything?"
MESSAGES: list[ChatCompletionUserMessageParam] = [{"role": "user", "content": QUESTION}]


def test_non_streaming_completion(oai: openai.OpenAI, llm: FakeOpenAI) -> None:
    llm.enqueue(FakeReply(text="Forty-two.", model="gpt-4o-2024"))
    result = oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert result.choices[0].message.content == "Forty-two."
    assert result.model == "gpt-4o-2024"
    assert result.usage is not None and result.usage.prompt_tokens == len(QUESTION) // 4
    assert oai.chat.completions.create(model="gpt-4o", messages=MESSAGES).model == "gpt-4o"
    (request, _) = llm.wait_for_requests(2)
    assert request["messages"] == MESSAGES and request["_path"] == "/v1/chat/completions"


def test_streaming_with_usage(oai: openai.OpenAI, llm: FakeOpenAI) -> None:
    usage = {
        "prompt_tokens": 20,
        "completion_tokens": 5,
        "total_tokens": 25,
        "prompt_tokens_details": {"cached_tokens": 10},
        "cost": 0.0123,
    }
    llm.enqueue(FakeReply(chunks=["Forty", "-two", "."], usage=usage))
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Forty-two."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    details = chunks[-1].usage.prompt_tokens_details
    assert details is not None and details.cached_tokens == 10
    assert chunks[-1].usage.model_extra == {"cost": 0.0123}


def test_streaming_without_usage(oai: openai.OpenAI, llm: FakeOpenAI) -> None:
    llm.enqueue(FakeReply(usage=None))
    chunks = list(
        oai.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == FakeReply().text


def test_models_list(oai: openai.OpenAI, llm: FakeOpenAI) -> None:
    llm.models = ["a", "b"]
    assert [m.id for m in oai.models.list()] == ["a", "b"]
    assert llm.requests[-1]["_path"] == "/v1/models"


def test_cut_stream_raises_connection_error(oai: openai.OpenAI, llm: FakeOpenAI) -> None:
    llm.enqueue(FakeReply(text="abcdefghijklmnop", chunk_size=4, cut_after=2))
    received = []
    stream = oai.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert "".join(filter(None, received)) == "abcdefgh"


def test_error_status(oai: openai.OpenAI, llm: FakeOpenAI) -> None:
    llm.enqueue(FakeReply(status=429), FakeReply(status=503, headers={"x-fake": "1"}))
    with pytest.raises(openai.RateLimitError) as rate:
        oai.chat.completions.create(model="m", messages=MESSAGES)
    assert rate.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.APIStatusError) as err:
        oai.chat.completions.create(model="m", messages=MESSAGES)
    assert err.value.status_code == 503 and err.value.response.headers["x-fake"] == "1"
    assert llm.pending == 0


def test_hang_triggers_client_timeout(llm: FakeOpenAI) -> None:
    llm.enqueue(FakeReply(hang=2.0))
    impatient = openai.OpenAI(base_url=llm.base_url, api_key="t", max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(model="m", messages=MESSAGES)


def test_many_concurrent_streams(oai: openai.OpenAI, llm: FakeOpenAI) -> None:
    llm.default_reply = FakeReply(first_token_delay=0.5, chunk_size=4)
    results: list[str] = []
    lock = threading.Lock()

    def converse() -> None:
        stream = oai.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream)
        with lock:
            results.append(text)

    threads = [threading.Thread(target=converse) for _ in range(40)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [FakeReply().text] * 40
    assert time.monotonic() - started < 3.0


def test_the_model_refuses_tool_messages_that_answer_no_call_as_openai_does(
    oai: openai.OpenAI,
) -> None:
    asked: Any = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        ],
    }
    user: Any = {"role": "user", "content": "hi"}
    answered: Any = {"role": "tool", "tool_call_id": "call_1", "content": "42"}
    stray: Any = {"role": "tool", "tool_call_id": "call_9", "content": "42"}
    oai.chat.completions.create(model="gpt-4o-mini", messages=[user, asked, answered])
    with pytest.raises(openai.BadRequestError, match="did not have response messages: call_1"):
        oai.chat.completions.create(model="gpt-4o-mini", messages=[user, asked, user])
    with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding"):
        oai.chat.completions.create(model="gpt-4o-mini", messages=[user, stray])


def test_slack_refuses_task_cards_of_another_shape(client: WebClient, slack: FakeSlackAPI) -> None:
    started = client.chat_startStream(
        channel="D1", thread_ts="1.0", chunks=[
            {"type": "task_update", "id": "t1", "title": "lookup", "status": "in_progress"},
        ],
    )  # fmt: skip
    ts = started["ts"]
    for bad in (
        {"type": "task_update", "id": "t1", "title": "lookup", "status": "done"},
        {"type": "task_update", "id": "t1", "title": "", "status": "complete"},
        {"type": "task_update", "id": "t1", "title": "x", "status": "error", "output": "y" * 257},
        {"type": "task_update", "id": "t1", "title": "x", "status": "error", "colour": "red"},
    ):
        with pytest.raises(SlackApiError, match="invalid_arguments"):
            client.chat_appendStream(channel="D1", ts=ts, chunks=[bad])
    client.chat_stopStream(channel="D1", ts=ts, chunks=[
        {"type": "task_update", "id": "t1", "title": "lookup", "status": "complete"},
    ])  # fmt: skip
    assert [c["status"] for c in slack.task_updates()] == ["in_progress", "complete"]


def test_conversations_replies_pages_a_thread_as_slack_does(
    client: WebClient, slack: FakeSlackAPI
) -> None:
    root = slack.add_message("C1", "parent")["ts"]
    replies = [slack.add_message("C1", f"reply {n}", thread_ts=root)["ts"] for n in range(5)]
    slack.add_message("C1", "another thread's", thread_ts=slack.add_message("C1", "x")["ts"])

    first = client.conversations_replies(channel="C1", ts=root, limit=3)
    assert [m["text"] for m in first["messages"]] == ["parent", "reply 0", "reply 1"]
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    second = client.conversations_replies(channel="C1", ts=root, limit=3, cursor=cursor)
    assert [m["text"] for m in second["messages"]] == ["parent", "reply 2", "reply 3"]
    cursor = second["response_metadata"]["next_cursor"]
    last = client.conversations_replies(channel="C1", ts=replies[1], limit=3, cursor=cursor)
    assert [m["text"] for m in last["messages"]] == ["parent", "reply 4"]
    assert (last["has_more"], last["response_metadata"]["next_cursor"]) == (False, "")

    before = client.conversations_replies(channel="C1", ts=root, latest=replies[2])
    assert [m["text"] for m in before["messages"]] == ["parent", "reply 0", "reply 1"]
    upto = client.conversations_replies(channel="C1", ts=root, latest=replies[2], inclusive=True)
    assert upto["messages"][-1]["text"] == "reply 2"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"channel": "C404", "ts": "1.000100"}, "channel_not_found"),
        ({"channel": "C1", "ts": "9.000100"}, "thread_not_found"),
        ({"channel": "C1", "ts": "ROOT", "cursor": "bm90LWEtY3Vyc29y"}, "invalid_cursor"),
        ({"channel": "C1", "ts": "ROOT", "latest": "soon"}, "invalid_ts_latest"),
    ],
)
def test_conversations_replies_errors(
    client: WebClient, slack: FakeSlackAPI, args: dict[str, str], error: str
) -> None:
    root = slack.add_message("C1", "parent")["ts"]
    args = {key: root if value == "ROOT" else value for key, value in args.items()}
    with pytest.raises(SlackApiError) as err:
        client.api_call("conversations.replies", params=args)
    assert err.value.response["error"] == error


def test_conversations_replies_rate_limits_and_tokens(
    client: WebClient, slack: FakeSlackAPI
) -> None:
    root = slack.add_message("C1", "parent")["ts"]
    slack.fail("conversations.replies", "ratelimited", status=429, retry_after=7, times=1)
    with pytest.raises(SlackApiError) as err:
        client.conversations_replies(channel="C1", ts=root)
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert client.conversations_replies(channel="C1", ts=root)["ok"]

    slack.oauth.add_token("xoxb-other", FakeWorkspace(team_id="T2", bot_user_id="UBOT2"))
    with pytest.raises(SlackApiError) as err:
        client.conversations_replies(channel="C1", ts=root)
    assert err.value.response["error"] == "invalid_auth"


def _cell(text: str) -> dict[str, Any]:
    return {"type": "raw_text", "text": text}


def _table(rows: int = 2, cells: int = 3, text: str = "x") -> dict[str, Any]:
    return {"type": "table", "rows": [[_cell(text)] * cells for _ in range(rows)]}


_RICH = {
    "type": "rich_text",
    "elements": [{"type": "rich_text_section", "elements": [{"type": "user", "user_id": "U1"}]}],
}


@pytest.mark.parametrize(
    ("blocks", "error", "says"),
    [
        ([_table(), _table()], "invalid_attachments", "only_one_table_allowed"),
        ([_table(rows=101)], "invalid_blocks", "100 rows"),
        ([_table(cells=21)], "invalid_blocks", "1 to 20 cells"),
        ([{"type": "table", "rows": [[]]}], "invalid_blocks", "1 to 20 cells"),
        ([{"type": "table", "rows": []}], "invalid_blocks", "rows"),
        ([_table(text="")], "invalid_blocks", "non-empty"),
        ([{"type": "table", "rows": [[{"type": "mrkdwn", "text": "*a*"}]]}], "invalid_blocks", ""),
        ([_table(rows=50, cells=2, text="y" * 101)], "invalid_blocks", "10000"),
        ([_table() | {"column_settings": [{"align": "middle"}]}], "invalid_blocks", "align"),
        ([_table() | {"column_settings": [{"is_wrapped": "yes"}]}], "invalid_blocks", "boolean"),
        ([_table() | {"column_settings": [None] * 21}], "invalid_blocks", "20"),
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            "invalid_blocks",
            "",
        ),
        ([{"type": "divider"}] * 51, "invalid_blocks", "50"),
    ],
)
def test_block_kit_slack_refuses_is_refused(
    client: WebClient, slack: FakeSlackAPI, blocks: list[dict[str, Any]], error: str, says: str
) -> None:
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C1", text="t", blocks=blocks)
    assert refused.value.response["error"] == error
    assert says in " ".join(refused.value.response["response_metadata"]["messages"])
    assert slack.refused_blocks()[0][:2] == ("chat.postMessage", error)


def test_a_documented_table_is_taken_in_a_message_not_in_a_view(
    client: WebClient, slack: FakeSlackAPI
) -> None:
    table = {
        "type": "table",
        "column_settings": [{"is_wrapped": True}, None, {"align": "right"}],
        "rows": [[_cell("Who"), _cell("Note"), _cell("Cost")], [_RICH, _cell("-"), _cell("$1")]],
    }
    client.chat_postMessage(channel="C1", text="t", blocks=[{"type": "divider"}, table])
    client.chat_postEphemeral(channel="C1", user="U1", text="t", blocks=[table])
    with pytest.raises(SlackApiError) as refused:
        client.views_publish(user_id="U1", view={"type": "home", "blocks": [table]})
    assert refused.value.response["error"] == "invalid_blocks"
    assert [method for method, *_ in slack.refused_blocks()] == ["views.publish"]
    # A response_url answers a refused message with HTTP 400.
    request = urllib.request.Request(
        slack.response_url(),
        data=json.dumps({"blocks": [table, table]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as http:
        urllib.request.urlopen(request, timeout=5)
    assert http.value.code == 400
