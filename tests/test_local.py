import threading

import pytest

from assistant.errors import InputError, ModelError
from assistant.models.local import LocalModel
from assistant.settings import load_settings

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def ask(text):
    return {"role": "user", "content": text}


def test_streams_a_non_empty_reply_with_the_gguf_chat_template(local):
    prompt = local.fit(SYSTEM, [], ask("Say hello to my cat."))
    assert "<|im_start|>system" in prompt.text  # SmolLM2's own ChatML template
    chunks = list(local.stream(prompt))
    assert len(chunks) > 1
    assert "".join(chunks).strip()


def test_overlong_history_is_trimmed_oldest_first(tmp_path):
    settings = load_settings(data_dir=tmp_path, n_ctx=512, max_tokens=32, temperature=0.0)
    model = LocalModel.shared(settings)
    history = []
    for i in range(200):
        history += [ask(f"Turn {i}: tell me about topic {i} in detail please."), {"role": "assistant", "content": "Sure. " * 20}]
    prompt = model.fit(SYSTEM, history, ask("And now?"))
    assert 0 < prompt.kept_history < 200
    assert len(prompt.tokens) <= settings.n_ctx - settings.max_tokens
    assert "Turn 199" in prompt.text and "Turn 0:" not in prompt.text  # the newest history is kept
    assert "".join(model.stream(prompt)).strip()


def test_a_single_message_too_long_for_the_context_is_refused_clearly(tmp_path):
    settings = load_settings(data_dir=tmp_path, n_ctx=256, max_tokens=32)
    model = LocalModel.shared(settings)
    with pytest.raises(InputError, match="too long for the local model"):
        model.fit(SYSTEM, [], ask("word " * 400))


def test_concurrent_users_do_not_corrupt_each_other(local):
    prompts = [local.fit(SYSTEM, [], ask(q)) for q in ("Name three fruits.", "What is the capital of France?")]
    expected = ["".join(local.stream(p, seed=1)) for p in prompts]
    results = [None, None]

    def run(i):
        results[i] = "".join(local.stream(prompts[i], seed=1))

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == expected  # greedy decoding: identical to one-at-a-time replies


def test_corrupt_gguf_gives_a_model_error(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    settings = load_settings(data_dir=tmp_path, model_path=broken)
    with pytest.raises(ModelError, match="could not load the local model"):
        LocalModel(settings)
