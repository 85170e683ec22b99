#!/usr/bin/env python3
"""Talks to a running `cartridge serve` with the official `openai` client: lists the models,
asks for a completion with and without a cartridge, streams one, and checks that an error
arrives as the client's typed exception. Usage: openai-check.py BASE_URL CARTRIDGE_NAME"""
import sys

import openai

base, cartridge = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key="check-token")

models = [m.id for m in client.models.list().data]
assert cartridge in models, models
base_model = models[0]
print("models:", models)

plain = client.chat.completions.create(model=base_model, messages=[{"role": "user", "content": "Say hello."}],
                                       max_tokens=8, temperature=0)
assert plain.choices[0].message.content, plain
assert plain.usage.completion_tokens >= 1, plain.usage
print("completion:", repr(plain.choices[0].message.content), plain.usage)

raw = client.chat.completions.with_raw_response.create(
    model=cartridge, messages=[{"role": "user", "content": "What is this about?"}], max_tokens=8, temperature=0)
served = raw.headers.get("x-cartridges")
assert served and served.startswith(cartridge + "@"), served
with_cartridge = raw.parse()
print("with", served + ":", repr(with_cartridge.choices[0].message.content))

pieces, finish = [], None
for chunk in client.chat.completions.create(model=cartridge, messages=[{"role": "user", "content": "What is this about?"}],
                                            max_tokens=8, temperature=0, stream=True):
    if chunk.choices:
        pieces.append(chunk.choices[0].delta.content or "")
        finish = chunk.choices[0].finish_reason or finish
assert "".join(pieces) == with_cartridge.choices[0].message.content, (pieces, with_cartridge)
assert finish in ("stop", "length"), finish
print("stream:", len(pieces), "chunks, finish", finish)

try:
    client.chat.completions.create(model="no-such-cartridge", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    raise SystemExit("an unknown model did not fail")
except openai.NotFoundError as e:
    assert e.body["code"] == "model_not_found", e.body
    print("error: 404", e.body["code"])

try:
    client.chat.completions.create(model=base_model, messages=[{"role": "user", "content": "hi"}], max_tokens=2, temperature=7)
    raise SystemExit("an out-of-range temperature did not fail")
except openai.BadRequestError as e:
    assert e.body["param"] == "temperature", e.body
    print("error: 400", e.body["param"])
print("openai client check passed")
