"""OpenAIBackend against a tiny OpenAI-compatible server on 127.0.0.1 (loopback only)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from r1zero.rollout.base import RolloutBackend, SamplingParams
from r1zero.rollout.openai import OpenAIBackend, OpenAIBackendError, parse_choice
from r1zero.utils import derive_seed

Reply = tuple[int, dict]  # (HTTP status, JSON body)


class FakeServer:
    """Records every request body; `behaviour(body, call_index)` decides the reply."""

    def __init__(self, behaviour: Callable[[dict, int], Reply]):
        self.behaviour = behaviour
        self.requests: list[tuple[str, dict, dict]] = []  # (path, body, headers)
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    index = len(server.requests)
                    server.requests.append((self.path, body, dict(self.headers)))
                status, payload = server.behaviour(body, index)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion_reply(text: str, finish: str = "stop", tokens: int = 3, **choice) -> Reply:
    return 200, {
        "choices": [{"index": 0, "text": text, "finish_reason": finish, **choice}],
        "usage": {"completion_tokens": tokens},
    }


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[dict, int], Reply]], FakeServer]]:
    servers: list[FakeServer] = []

    def start(behaviour):
        servers.append(FakeServer(behaviour))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def echo_seed(body: dict, _: int) -> Reply:
    # The reply reveals which prompt and seed were sent, so order can be checked.
    return completion_reply(f"{body['prompt']}|{body['seed']}", tokens=body["seed"] % 7)


def test_generate_prompt_major_with_per_sample_seeds(serve, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-test")
    server = serve(echo_seed)
    backend = OpenAIBackend(server.url, "m", api_key_env="MY_KEY", concurrency=4)
    assert isinstance(backend, RolloutBackend)
    params = SamplingParams(n=3, temperature=0.7, top_p=0.9, max_new_tokens=11, stop=("X",))
    out = backend.generate(["a", "b"], params, prompt_seeds=[10, 20])

    assert [(c.prompt_index, c.sample_index) for c in out] == [(i, j) for i in (0, 1) for j in range(3)]
    for c in out:
        seed = derive_seed([10, 20][c.prompt_index], c.sample_index)
        # single stop string, server silent on which stop hit -> restored and flagged
        assert c.text == f"{'ab'[c.prompt_index]}|{seed}X"
        assert c.extra["stop_inferred"] and c.extra["num_tokens"] == seed % 7
        assert c.finish_reason == "stop" and c.logprobs is None
    path, body, headers = server.requests[0]
    assert path == "/v1/completions"
    assert body["n"] == 1 and body["max_tokens"] == 11 and body["stop"] == ["X"]
    assert body["temperature"] == 0.7 and body["top_p"] == 0.9 and body["model"] == "m"
    assert headers["Authorization"] == "Bearer sk-test"
    backend.close()


def test_chat_endpoint_sends_user_message(serve, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = serve(lambda body, i: (200, {"choices": [{"message": {"content": "hi"}, "finish_reason": "length"}]}))
    backend = OpenAIBackend(server.url, "m", endpoint="chat")
    (c,) = backend.generate(["What is 2+2?"], SamplingParams(n=1, temperature=0.0), [0])
    path, body, headers = server.requests[0]
    assert path == "/v1/chat/completions"
    assert body["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert "Authorization" not in headers  # no key in the environment -> no header
    assert c.text == "hi" and c.truncated and c.extra["num_tokens"] is None


def test_retries_500_then_succeeds(serve):
    server = serve(lambda body, i: (500, {"error": "boom"}) if i < 2 else completion_reply("ok"))
    backend = OpenAIBackend(server.url, "m", backoff_s=0.01, max_retries=3)
    (c,) = backend.generate(["p"], SamplingParams(n=1), [0])
    assert c.text == "ok" and len(server.requests) == 3


def test_gives_up_after_retries_and_does_not_retry_400(serve):
    server = serve(lambda body, i: (503, {"error": "overloaded"}))
    backend = OpenAIBackend(server.url, "m", backoff_s=0.01, max_retries=2)
    with pytest.raises(OpenAIBackendError, match="3 attempts.*503"):
        backend.generate(["p"], SamplingParams(n=1), [0])
    server400 = serve(lambda body, i: (400, {"error": "bad max_tokens"}))
    backend = OpenAIBackend(server400.url, "m", backoff_s=0.01, max_retries=5)
    with pytest.raises(OpenAIBackendError, match="HTTP 400.*bad max_tokens"):
        backend.generate(["p"], SamplingParams(n=1), [0])
    assert len(server400.requests) == 1


def test_timeout_is_retried_then_reported(serve):
    def slow_first(body, i):
        if i == 0:
            time.sleep(0.6)
        return completion_reply("late" if i == 0 else "fast")

    server = serve(slow_first)
    backend = OpenAIBackend(server.url, "m", timeout_s=0.2, backoff_s=0.01, max_retries=2)
    (c,) = backend.generate(["p"], SamplingParams(n=1), [0])
    assert c.text == "fast" and len(server.requests) == 2

    always_slow = serve(lambda body, i: (time.sleep(0.6), completion_reply("late"))[1])
    backend = OpenAIBackend(always_slow.url, "m", timeout_s=0.2, backoff_s=0.01, max_retries=1)
    with pytest.raises(OpenAIBackendError, match="timeout"):
        backend.generate(["p"], SamplingParams(n=1), [0])


def test_connection_refused_is_an_error():
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m", backoff_s=0.01, max_retries=1, timeout_s=1)
    with pytest.raises(OpenAIBackendError, match="connection error"):
        backend.generate(["p"], SamplingParams(n=1), [0])


def test_update_weights_refuses_and_lifecycle_noops():
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m")
    with pytest.raises(NotImplementedError, match="evaluation and analysis only"):
        backend.load_weights([])
    backend.sleep()
    backend.wake()
    backend.close()
    with pytest.raises(OpenAIBackendError, match="closed"):
        backend.generate(["p"], SamplingParams(n=1), [0])


@pytest.mark.parametrize(
    "choice, stop, text, flagged",
    [
        ({"text": "a", "finish_reason": "stop", "stop_reason": "</answer>"}, ("</answer>", "Q:"), "a</answer>", False),
        ({"text": "a", "finish_reason": "stop", "stop_reason": None}, ("</answer>",), "a", False),  # vLLM: EOS
        ({"text": "a", "finish_reason": "stop", "matched_stop": "Q:"}, ("</answer>", "Q:"), "aQ:", False),
        ({"text": "a", "finish_reason": "stop"}, ("</answer>", "Q:"), "a", False),  # ambiguous
        ({"text": "a</answer>", "finish_reason": "stop"}, ("</answer>",), "a</answer>", False),
        ({"text": "a", "finish_reason": "length"}, ("</answer>",), "a", False),
        ({"text": "a", "finish_reason": "eos"}, (), "a", False),
    ],
)
def test_parse_choice_stop_strings(choice, stop, text, flagged):
    got, finish, extra = parse_choice({"choices": [choice]}, "completions", stop)
    assert got == text
    assert finish == ("length" if choice["finish_reason"] == "length" else "stop")
    assert extra.get("stop_inferred", False) == flagged
