"""Embedders: the lexical default is deterministic and lexical; OpenAI speaks the real wire format."""

from __future__ import annotations

import base64
import json
import logging
import math
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jarvis.errors import ProviderAuthError, ProviderServerError
from jarvis.llm.embedders import (
    LEXICAL_MODEL,
    MODEL_DIMS,
    OPENAI_MODEL,
    EmbedderRegistry,
    LexicalEmbedder,
    OpenAIEmbedder,
    describe_model,
)

EMBEDDING_DIM = MODEL_DIMS[LEXICAL_MODEL]  # 384


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_lexical_vectors_are_deterministic_unit_length_and_384_d() -> None:
    texts = ["My sister Alice lives in Lisbon", "", "!!!", "naïve café ünïcode"]
    first = LexicalEmbedder().embed(texts)
    second = LexicalEmbedder().embed(texts)
    assert first == second
    for vec in first:
        assert len(vec) == EMBEDDING_DIM
    for vec in (first[0], first[2], first[3]):
        assert math.isclose(math.sqrt(sum(v * v for v in vec)), 1.0, rel_tol=1e-9)
    # A fixed fingerprint: the hash must not depend on PYTHONHASHSEED or the process.
    assert round(first[0][int(max(range(EMBEDDING_DIM), key=lambda i: abs(first[0][i])))], 6) != 0


def test_lexical_similarity_follows_shared_words_and_bigrams() -> None:
    e = LexicalEmbedder()
    q, same_words, other = e.embed(
        ["where does Alice live", "Alice lives in Lisbon", "the invoice is due on Friday"]
    )
    assert cosine(q, same_words) > cosine(q, other) + 0.1
    a, b = e.embed(["new york city", "city york new"])
    assert cosine(a, b) < 0.999  # word order matters through bigrams
    assert e.model_name == LEXICAL_MODEL and e.lexical
    assert "lexical" in describe_model(LEXICAL_MODEL)


class _EmbeddingsServer(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []
    fail_with: int | None = None

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), **body}
        )
        if type(self).fail_with:
            payload = json.dumps({"error": {"message": "nope", "type": "x", "code": None}}).encode()
            self.send_response(type(self).fail_with)
        else:
            data = []
            for i, text in enumerate(body["input"]):
                vec = [0.0] * body["dimensions"]
                vec[len(text) % body["dimensions"]] = 3.0  # not normalised: the adapter must do it
                vec[0] += 4.0
                if body.get("encoding_format") == "base64":
                    emb: Any = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
                else:
                    emb = vec
                data.append({"object": "embedding", "index": i, "embedding": emb})
            data.reverse()  # the adapter must order by index
            payload = json.dumps(
                {
                    "object": "list",
                    "data": data,
                    "model": body["model"],
                    "usage": {"prompt_tokens": 3, "total_tokens": 3},
                }
            ).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def embeddings_server() -> Iterator[str]:
    _EmbeddingsServer.requests = []
    _EmbeddingsServer.fail_with = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_embedder_sends_the_model_dimensions_and_key(embeddings_server: str) -> None:
    embedder = OpenAIEmbedder("sk-test-123", base_url=embeddings_server, max_retries=0)
    vectors = embedder.embed(["a", "abcd"])
    req = _EmbeddingsServer.requests[0]
    assert req["path"] == "/v1/embeddings"
    assert req["model"] == "text-embedding-3-small"
    assert req["dimensions"] == 384
    assert req["auth"] == "Bearer sk-test-123"
    assert [len(v) for v in vectors] == [384, 384]
    assert vectors[0][1] == pytest.approx(0.6) and vectors[0][0] == pytest.approx(0.8)
    assert vectors[1][4] == pytest.approx(0.6)  # order by index despite the reversed answer
    assert embedder.model_name == OPENAI_MODEL and not embedder.lexical


def test_openai_errors_become_jarvis_errors(embeddings_server: str) -> None:
    _EmbeddingsServer.fail_with = 401
    with pytest.raises(ProviderAuthError):
        OpenAIEmbedder("sk-bad", base_url=embeddings_server, max_retries=0).embed(["x"])
    _EmbeddingsServer.fail_with = 500
    with pytest.raises(ProviderServerError):
        OpenAIEmbedder("sk-bad", base_url=embeddings_server, max_retries=0).embed(["x"])


def test_registry_builds_openai_only_with_a_key(embeddings_server: str) -> None:
    from jarvis.errors import ConfigError

    registry = EmbedderRegistry(LexicalEmbedder())
    assert registry.get(LEXICAL_MODEL).model_name == LEXICAL_MODEL
    with pytest.raises(ConfigError):
        registry.get(OPENAI_MODEL)
    emb = registry.get(OPENAI_MODEL, openai_key=lambda: ("sk-k", embeddings_server))
    assert len(emb.embed(["hi"])[0]) == 384


def test_local_embedder_runs_when_the_extra_is_installed() -> None:
    from jarvis.llm.embedders import SentenceTransformerEmbedder, local_embedder_available

    if not local_embedder_available():
        pytest.skip("optional extra 'local' not installed")
    a, b, c = SentenceTransformerEmbedder().embed(["a dog", "a puppy", "tax return"])
    assert len(a) == 384 and cosine(a, b) > cosine(a, c)


def test_default_is_wordllama_meaning_offline() -> None:
    from jarvis.llm.embedders import WORDLLAMA_MODEL, default_embedder

    embedder = default_embedder()
    assert embedder.model_name == WORDLLAMA_MODEL and not embedder.lexical
    assert embedder.dim == 256
    assert default_embedder("lexical").model_name == LEXICAL_MODEL


def test_wordllama_finds_meaning_without_shared_words() -> None:
    from jarvis.llm.embedders import WordLlamaEmbedder

    vectors = WordLlamaEmbedder().embed(
        [
            "food I must avoid",
            "I am allergic to peanuts",
            "My sister lives in Lisbon",
            "The car insurance renewal is due in March",
            "",
        ]
    )
    query, allergy, sister, insurance, empty = vectors
    assert all(len(v) == 256 for v in vectors)
    for v in (query, allergy, sister, insurance):
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-6)
    assert cosine(query, allergy) > max(cosine(query, sister), cosine(query, insurance)) + 0.1
    assert not any(empty)  # nothing to embed: the zero vector, never NaN
    assert WordLlamaEmbedder().embed(["food I must avoid"])[0] == query  # deterministic


def test_wordllama_loads_the_packaged_model_without_the_network(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import shutil
    import socket

    import requests

    from jarvis.errors import ConfigError
    from jarvis.llm.embedders import WordLlamaEmbedder, packaged_model_dir
    from jarvis.llm.embedders import wordllama as module

    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(module, "_models", {})  # load again, from the wheel
    assert len(WordLlamaEmbedder().embed(["hello there"])[0]) == 256
    # A folder without the tokenizer: a clear error, and no download is tried.
    broken = tmp_path / "wordllama"
    shutil.copytree(packaged_model_dir() / "weights", broken / "weights")
    with pytest.raises(ConfigError, match="no download"):
        WordLlamaEmbedder(broken).embed(["hello"])
    assert attempts == []


def test_wordllama_leaves_the_root_logger_alone() -> None:
    """The package calls logging.basicConfig on import; Jarvis's redacting handler must stay
    the only root handler (an extra one would print unredacted records)."""
    import subprocess
    import sys

    code = (
        "import logging; from jarvis.llm.embedders import WordLlamaEmbedder; "
        "WordLlamaEmbedder().embed(['x']); root = logging.getLogger(); "
        "print(len(root.handlers), root.level)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out == ["0", str(logging.WARNING)]


def test_registry_accepts_aliases_and_registered_models() -> None:
    from jarvis.llm.embedders import WORDLLAMA_MODEL, WordLlamaEmbedder

    registry = EmbedderRegistry(WordLlamaEmbedder())
    assert registry.get("wordllama").model_name == WORDLLAMA_MODEL
    assert registry.get("lexical").model_name == LEXICAL_MODEL

    class Other(LexicalEmbedder):
        model_name = "lexical-other"

    registry.register(Other())
    assert registry.get("lexical-other").model_name == "lexical-other"
