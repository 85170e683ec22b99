"""Anchor for `make bench`: llama.cpp (through llama-cpp-python) on the same GGUF and threads.

Usage: python bench_llamacpp.py MODEL.gguf --threads 2 --pp 512 --tg 128 --reps 3
Prints one JSON line: {"engine": "llama.cpp", "pp_tok_s": ..., "tg_tok_s": ...}.
Prompt processing is timed as one eval of pp tokens; generation as tg single-token evals
after one token, best of reps, like the Swift benchmark.
"""
import argparse
import json
import time

import llama_cpp

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--pp", type=int, default=512)
ap.add_argument("--tg", type=int, default=128)
ap.add_argument("--reps", type=int, default=3)
a = ap.parse_args()

llm = llama_cpp.Llama(model_path=a.model, n_ctx=max(2048, a.pp + a.tg + 8), n_threads=a.threads,
                      n_threads_batch=a.threads, n_batch=a.pp, logits_all=False, verbose=False)
text = "Cartridges compress a corpus into a small trained KV cache. The quick brown fox jumps over the lazy dog. " * 200
ids = llm.tokenize(text.encode(), add_bos=False)[: a.pp]
assert len(ids) == a.pp

best_pp = float("inf")
for _ in range(a.reps):
    llm.reset()
    llm._ctx.kv_cache_clear() if hasattr(llm._ctx, "kv_cache_clear") else None
    t0 = time.perf_counter()
    llm.eval(ids)
    best_pp = min(best_pp, time.perf_counter() - t0)

best_tg = float("inf")
for _ in range(a.reps):
    llm.reset()
    llm._ctx.kv_cache_clear() if hasattr(llm._ctx, "kv_cache_clear") else None
    llm.eval(ids[:1])
    tok = ids[1]
    t0 = time.perf_counter()
    for _ in range(a.tg):
        llm.eval([tok])
    best_tg = min(best_tg, time.perf_counter() - t0)

print(json.dumps({"engine": "llama.cpp", "version": llama_cpp.__version__, "threads": a.threads,
                  "pp_tokens": a.pp, "pp_tok_s": a.pp / best_pp, "tg_tokens": a.tg, "tg_tok_s": a.tg / best_tg}))
