"""Search by meaning: paraphrase queries that share no content word with their memory.

40 memories plus 20 distractors per user, one user per embedder, stored and searched through
``MemoryService`` (semantic and hybrid) on a real PostgreSQL. Prints recall@1 and recall@3 of
each embedder and mode, the ratio against lexical hashing (the default this replaces), and
whether hybrid is ever worse than vector-only (it must not be). OpenAI is measured only with
``OPENAI_API_KEY`` set (it needs the network); the local model only with the ``local`` extra.
Also: wordllama's load and embedding time.

    .venv/bin/python benchmarks/embedding_bench.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from benchmarks._db import benchmark_database  # noqa: E402
from benchmarks.paraphrases import (  # noqa: E402
    DISTRACTORS,
    PAIRS,
    TRAPS,
    shared_content_words,
    synthetic_memories,
)
from jarvis.bootstrap import build_services  # noqa: E402
from jarvis.identity import Principal  # noqa: E402
from jarvis.llm.embedders import (  # noqa: E402
    LEXICAL_MODEL,
    LOCAL_MODEL,
    OPENAI_MODEL,
    WORDLLAMA_MODEL,
    OpenAIEmbedder,
    WordLlamaEmbedder,
    local_embedder_available,
)
from jarvis.llm.embedders import wordllama as wordllama_module  # noqa: E402


def log(msg: str) -> None:
    print(msg, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", help="reuse (and keep) the database in this folder")
    args = parser.parse_args()
    for memory, query in PAIRS:
        shared = shared_content_words(memory, query)
        assert not shared, f"{query!r} shares {shared} with {memory!r}"

    wordllama_module._models.clear()
    t0 = time.perf_counter()
    wordllama_module.load_wordllama()
    load_ms = (time.perf_counter() - t0) * 1000
    sentences = synthetic_memories(1000, seed=3)
    embedder = WordLlamaEmbedder()
    embedder.embed(sentences)
    t0 = time.perf_counter()
    embedder.embed(sentences)
    embed_ms = (time.perf_counter() - t0) * 1000
    log(
        f"wordllama: model loaded in {load_ms:.0f} ms (after import); 1,000 sentences in {embed_ms:.1f} ms"
    )

    models = [LEXICAL_MODEL, WORDLLAMA_MODEL]
    if local_embedder_available():
        models.append(LOCAL_MODEL)
    else:
        log("local all-MiniLM-L6-v2: not measured (optional extra 'local' not installed)")
    if os.environ.get("OPENAI_API_KEY"):
        models.append(OPENAI_MODEL)
    else:
        log("OpenAI text-embedding-3-small: not measured (set OPENAI_API_KEY; needs the network)")

    sets = {
        "plain": [m for m, _ in PAIRS] + DISTRACTORS,
        # distractors that share a word with a query: what full text finds, and ranks first
        "traps": [m for m, _ in PAIRS] + DISTRACTORS + TRAPS,
    }
    results: dict[tuple[str, str, str], tuple[float, float]] = {}
    with benchmark_database(args.keep) as settings:
        services = build_services(settings, recover_runs=False, background=False)
        if OPENAI_MODEL in models:
            services.memory.embedders.registry.register(
                OpenAIEmbedder(os.environ["OPENAI_API_KEY"])
            )
        owner = create_engine(settings.owner_url())
        for model in models:
            for set_name, memories in sets.items():
                email = f"{model.split('/')[0]}-{uuid.uuid4().hex[:6]}@bench"
                with owner.begin() as conn:
                    uid = conn.scalar(
                        text(
                            "INSERT INTO users (email, password_hash) VALUES (:e, 'x') RETURNING id"
                        ),
                        {"e": email},
                    )
                principal = Principal(user_id=uid, email=email, role="user")
                services.memory.reembed(principal, model)  # the user's model
                for content in memories:
                    services.memory.store(principal, content)
                for mode in ("semantic", "hybrid"):
                    at1 = at3 = 0
                    for memory, query in PAIRS:
                        found = services.memory.search(principal, query, k=3, mode=mode)  # type: ignore[arg-type]
                        hits = [h.content for h in found]
                        at1 += hits[:1] == [memory]
                        at3 += memory in hits
                    results[(model, set_name, mode)] = (at1 / len(PAIRS), at3 / len(PAIRS))
        owner.dispose()
        services.engine.dispose()

    log("")
    log(
        f"{len(PAIRS)} paraphrase queries (no content word shared with their memory); "
        f"plain: {len(sets['plain'])} memories per user; traps: plus {len(TRAPS)} distractors "
        "that share a word with a query"
    )
    log(f"{'embedder':<34} {'set':<6} {'mode':<9} {'recall@1':>9} {'recall@3':>9}")
    for (model, set_name, mode), (r1, r3) in results.items():
        log(f"{model:<34} {set_name:<6} {mode:<9} {r1:9.3f} {r3:9.3f}")
    log("")
    ok = True
    for set_name in sets:
        base1, base3 = results[(LEXICAL_MODEL, set_name, "semantic")]
        for model in models:
            s1, s3 = results[(model, set_name, "semantic")]
            h1, h3 = results[(model, set_name, "hybrid")]
            worse = h1 < s1 or h3 < s3
            ok = ok and not worse
            verdict = "WORSE than vector-only" if worse else "never worse than vector-only"
            log(
                f"{set_name}, {model}: recall@1 {s1:.3f} vs lexical {base1:.3f} = "
                f"{(s1 / base1 if base1 else float('inf')):.1f}x, recall@3 {s3:.3f} vs "
                f"{base3:.3f}; hybrid {h1:.3f}/{h3:.3f}: {verdict}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
