"""The openai backend against a real HTTP server on 127.0.0.1 speaking the OpenAI chat API."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from PIL import Image

from indexer.domain import Answer, Description, Turn, ViewInput
from indexer.errors import InvalidRequest, ModelUnavailable
from indexer.models.openai_backend import OpenAIModel, image_data_url
from indexer.settings import ModelSettings

Reply = tuple[int, dict[str, str], bytes]


class FakeServer:
    """Answers each POST with the next scripted reply; records every request body."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[Reply | Callable[[dict[str, Any]], Reply]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                server.paths.append(self.path)
                body = json.dumps({"data": [{"id": "glm-4.5v"}]}).encode()
                self._reply(200, {"Content-Type": "application/json"}, body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                req = json.loads(self.rfile.read(length))
                server.requests.append(req)
                server.paths.append(self.path)
                server.headers.append(dict(self.headers))
                step = server.script.pop(0) if server.script else (500, {}, b"no script")
                status, headers, body = step(req) if callable(step) else step
                self._reply(status, headers, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.closed = False
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(content: str, reasoning: str | None = None, **choice: Any) -> Reply:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    body = {
        "id": "cmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", **choice}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def sse(chunks: list[dict[str, Any]]) -> Reply:
    lines = [": keep-alive\n\n"]
    for delta in chunks:
        event = {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        lines.append(f"data: {json.dumps(event)}\n\n")
    done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    lines.append(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n")
    return 200, {"Content-Type": "text/event-stream"}, "".join(lines).encode()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


def make(server: FakeServer, **kw: Any) -> OpenAIModel:
    settings = ModelSettings(
        backend="openai", base_url=server.base_url, served_name="glm-4.5v", timeout_s=5.0
    )
    kw.setdefault("backoff_s", 0.01)
    return OpenAIModel(settings, **kw)


def view(view_id: str = "v1", size: tuple[int, int] = (200, 100)) -> ViewInput:
    rng = np.random.default_rng(len(view_id))
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    return ViewInput(view_id, Image.fromarray(arr))


def test_answer_request_shape_reasoning_and_boxes(server: FakeServer) -> None:
    server.script.append(
        completion(
            "In image 2 the car is at <|begin_of_box|>[[100,200,500,1000]]<|end_of_box|>.",
            reasoning="Look at image 1.\n\nThen image 2 has a car.",
        )
    )
    m = make(server)
    views = [view("a", (200, 100)), view("b", (400, 300))]
    history = [Turn("user", "hi"), Turn("assistant", "hello")]
    ans = m.answer("Where is the car?", views, [Description("a street")], history)
    assert isinstance(ans, Answer)
    req = server.requests[0]
    assert server.paths[0] == "/v1/chat/completions"
    assert server.headers[0]["Authorization"] == "Bearer EMPTY"
    assert req["model"] == "glm-4.5v"
    assert req["chat_template_kwargs"] == {"enable_thinking": True}
    assert req["skip_special_tokens"] is False
    assert [m["role"] for m in req["messages"]] == ["user", "assistant", "user"]
    parts = req["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert parts[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "Image 1: a street" in parts[2]["text"] and "Where is the car?" in parts[2]["text"]
    assert [s.text for s in ans.steps] == ["Look at image 1.", "Then image 2 has a car."]
    assert ans.steps[1].evidence == [{"view_id": "b"}]
    (box,) = ans.boxes
    assert box.view_id == "b"
    assert box.box.as_list() == [40.0, 60.0, 200.0, 300.0]  # 0-1000 -> pixels of view b
    assert ans.refs == ["b"]
    assert "<|begin_of_box|>" not in ans.text
    assert ans.debug["usage"]["completion_tokens"] == 5


def test_answer_thinking_inside_content_and_thinking_off(server: FakeServer) -> None:
    server.script += [
        completion("<think>first. second.</think>It is red."),
        completion("It is blue."),
    ]
    m = make(server)
    a = m.answer("colour?", [view()], [])
    assert a.text == "It is red." and [s.text for s in a.steps] == ["first.", "second."]
    b = m.answer("colour?", [view()], [], thinking=False)
    assert server.requests[1]["chat_template_kwargs"] == {"enable_thinking": False}
    assert b.text == "It is blue." and b.steps == []


def test_retry_503_then_200(server: FakeServer) -> None:
    server.script += [(503, {"Retry-After": "0"}, b"busy"), completion("fine")]
    m = make(server)
    assert m.answer("q", [], []).text == "fine"
    assert len(server.requests) == 2 and m.retried == 1


def test_retries_exhausted_is_model_unavailable(server: FakeServer) -> None:
    server.script += [(503, {}, b"busy")] * 3 + [(429, {}, b"slow down")]
    m = make(server, retries=3)
    with pytest.raises(ModelUnavailable) as e:
        m.describe(view())
    assert len(server.requests) == 4
    assert "429" in e.value.message


def test_connection_refused_is_model_unavailable(server: FakeServer) -> None:
    url = server.base_url
    server.close()
    m = OpenAIModel(
        ModelSettings(backend="openai", base_url=url, timeout_s=2.0), retries=1, backoff_s=0.01
    )
    with pytest.raises(ModelUnavailable, match="after 2 attempts"):
        m.answer("q", [], [])


def test_client_error_is_not_retried(server: FakeServer) -> None:
    server.script.append((400, {}, b'{"error": "too many images"}'))
    m = make(server)
    with pytest.raises(InvalidRequest, match="too many images"):
        m.answer("q", [view()], [])
    assert len(server.requests) == 1


def test_score_from_logprobs(server: FakeServer) -> None:
    top = [
        {"token": "yes", "logprob": math.log(0.6)},
        {"token": " Yes", "logprob": math.log(0.1)},
        {"token": "no", "logprob": math.log(0.2)},
        {"token": "maybe", "logprob": math.log(0.1)},
    ]
    logprobs = {"content": [{"token": "yes", "logprob": math.log(0.6), "top_logprobs": top}]}
    server.script.append(completion("yes", logprobs=logprobs))
    m = make(server)
    s = m.score("a red car", view(), Description("a car"))
    assert s == pytest.approx(0.7 / 0.9)
    req = server.requests[0]
    assert req["logprobs"] is True and req["max_tokens"] == 1
    assert req["chat_template_kwargs"] == {"enable_thinking": False}
    assert "a red car" in req["messages"][0]["content"][-1]["text"]


@pytest.mark.parametrize(("content", "expected"), [("Yes.", 1.0), ("no", 0.0), ("hmm", 0.5)])
def test_score_without_logprobs_parses_the_word(
    server: FakeServer, content: str, expected: float
) -> None:
    server.script.append(completion(content))
    assert make(server).score("q", view(), None) == expected


def test_stream_yields_deltas_then_answer(server: FakeServer) -> None:
    server.script.append(
        sse(
            [
                {"role": "assistant"},
                {"reasoning_content": "Look at "},
                {"reasoning_content": "image 1."},
                {"content": "A dog "},
                {"content": "<|begin_of_box|>[0,0,500,500]<|end_of_box|>"},
            ]
        )
    )
    m = make(server)
    events = list(m.answer_stream("what?", [view("d", (100, 100))], []))
    kinds = [e["type"] for e in events]
    assert kinds == ["reasoning", "reasoning", "content", "content", "done"]
    assert server.requests[0]["stream"] is True
    ans = events[-1]["answer"]
    assert ans.text.startswith("A dog") and ans.steps[0].text == "Look at image 1."
    assert ans.boxes[0].box.as_list() == [0.0, 0.0, 50.0, 50.0]
    assert ans.debug["finish_reason"] == "stop" and ans.debug["streamed"] is True


def test_stream_retries_503_before_first_byte(server: FakeServer) -> None:
    server.script += [(503, {}, b"busy"), sse([{"content": "ok"}])]
    events = list(make(server).answer_stream("q", [], []))
    assert events[-1]["answer"].text == "ok"
    assert len(server.requests) == 2


def test_video_as_timestamped_frames(server: FakeServer) -> None:
    server.script.append(completion("A car drives by."))
    frames = [(2.0, view("f2").image), (0.5, view("f1").image), (4.0, view("f3").image)]
    a = make(server).answer_video("what happens?", frames, thinking=False)
    parts = server.requests[0]["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"] * 3 + ["text"]
    assert [p["text"] for p in parts[:-1:2]] == [
        "Frame at 0.5s:",
        "Frame at 2.0s:",
        "Frame at 4.0s:",
    ]
    assert a.text == "A car drives by." and a.debug["frame_times"] == [2.0, 0.5, 4.0]


def test_extract_parses_json_and_reports_failure(server: FakeServer) -> None:
    server.script += [
        completion('```json\n{"pairs": [{"key": "Name", "value": "Ada"}]}\n```'),
        completion("I cannot read this table."),
    ]
    m = make(server)
    ok = m.extract(view(), "kv")
    assert ok["ok"] and ok["data"] == {"pairs": [{"key": "Name", "value": "Ada"}]}
    bad = m.extract(view(), "table")
    assert bad["kind"] == "tables" and not bad["ok"] and bad["data"] is None and bad["error"]
    with pytest.raises(InvalidRequest):
        m.extract(view(), "poem")


def test_describe_and_health(server: FakeServer) -> None:
    server.script.append(completion("A red car on a street."))
    m = make(server)
    d = m.describe(view())
    assert d.caption == "A red car on a street." and d.tags == []
    assert m.health() == {"ok": True, "models": ["glm-4.5v"], "served_name_listed": True}


def test_embeddings_are_refused_with_advice(server: FakeServer) -> None:
    m = make(server)
    for call in (
        lambda: m.embed_texts(["x"]),
        lambda: m.embed_query_images([view()]),
        lambda: m.encode_views([view()]),
    ):
        with pytest.raises(ModelUnavailable, match="glm"):
            call()
    assert server.requests == []


def test_missing_base_url() -> None:
    with pytest.raises(ModelUnavailable, match="BASE_URL"):
        OpenAIModel(ModelSettings(backend="openai")).answer("q", [], [])


def test_large_images_are_downscaled_in_the_data_url() -> None:
    import base64
    import io

    big = Image.new("RGB", (5000, 1000), "white")
    url = image_data_url(big)
    raw = base64.b64decode(url.split(",", 1)[1])
    assert Image.open(io.BytesIO(raw)).size == (3072, 614)
