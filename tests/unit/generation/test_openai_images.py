"""The OpenAI-compatible images client against a local server speaking the real wire format
(POST /v1/images/generations, Bearer key, JSON body, `data[0].b64_json` answer)."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from PIL import Image

from indexer.errors import InvalidRequest, ModelUnavailable


class _Fake(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []
    mode = "ok"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                               "body": body})
        if self.headers.get("Authorization") != "Bearer sk-test":
            return self._send(401, {"error": {"message": "Incorrect API key provided",
                                              "type": "invalid_request_error"}})
        if _Fake.mode == "policy":
            return self._send(400, {"error": {"message": "Your request was rejected by the "
                                              "safety system.", "code": "content_policy"}})
        if _Fake.mode == "down":
            return self._send(500, {"error": {"message": "The server had an error"}})
        if _Fake.mode == "url":
            return self._send(200, {"created": 1, "data": [{"url": "https://x/y.png"}]})
        w, h = (int(x) for x in body["size"].split("x"))
        im = Image.new("RGB", (w, h), (30, 144, 255))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        self._send(200, {"created": 1_700_000_000, "data": [{
            "b64_json": base64.b64encode(buf.getvalue()).decode(),
            "revised_prompt": body["prompt"] + ", photorealistic"}]})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture()
def server() -> Iterator[str]:
    _Fake.requests, _Fake.mode = [], "ok"
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_wire_format_and_image(server: str, cpu_model) -> None:  # type: ignore[no-untyped-def]
    from indexer.generation.openai_images import OpenAIImagesGenerator

    g = OpenAIImagesGenerator(server, api_key="sk-test", model_name="gpt-image-1",
                              model=cpu_model)
    out = g.generate("a red apple", 3, size=(256, 192))
    req = _Fake.requests[-1]
    assert req["path"] == "/v1/images/generations" and req["auth"] == "Bearer sk-test"
    assert req["body"] == {"model": "gpt-image-1", "prompt": "a red apple", "n": 1,
                           "size": "256x192", "response_format": "b64_json"}
    assert out.image.size == (256, 192) and out.backend == "openai" and out.provenance == []
    assert tuple(np.asarray(out.image)[0, 0]) == (30, 144, 255)
    assert any("revised the prompt" in n for n in out.notes)
    assert any("takes no seed" in n for n in out.notes)
    # the index's own model checks the result: a flat blue square is no red apple
    assert [(c.kind, c.satisfied) for c in out.checks] == [("count", False), ("colour", False)]


def test_seed_is_sent_when_the_server_takes_one(server: str) -> None:
    from indexer.generation.openai_images import OpenAIImagesGenerator

    OpenAIImagesGenerator(server, api_key="sk-test", send_seed=True).generate("a cat", 42)
    assert _Fake.requests[-1]["body"]["seed"] == 42


@pytest.mark.parametrize(("mode", "key", "error", "words"), [
    ("policy", "sk-test", InvalidRequest, "rejected by the safety system"),
    ("down", "sk-test", ModelUnavailable, "answered 500"),
    ("ok", "sk-wrong", ModelUnavailable, "Incorrect API key"),
    ("url", "sk-test", ModelUnavailable, "b64_json"),
])
def test_errors_are_typed_with_the_server_message(server: str, mode: str, key: str,
                                                  error: type, words: str) -> None:
    from indexer.generation.openai_images import OpenAIImagesGenerator

    _Fake.mode = mode
    with pytest.raises(error, match=words):
        OpenAIImagesGenerator(server, api_key=key).generate("a cat", 1)


def test_unreachable_server_is_503() -> None:
    from indexer.generation.openai_images import OpenAIImagesGenerator

    g = OpenAIImagesGenerator("http://127.0.0.1:9/v1", timeout_s=2)
    with pytest.raises(ModelUnavailable, match="did not answer"):
        g.generate("a cat", 1)
