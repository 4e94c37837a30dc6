"""Example replies before and after teaching, on held-out exchanges: what the UI shows as the result.

Contract of ``before_and_after(result, count=3, max_new_tokens=32)``: for up to ``count`` of the
run's validation dialogues (never trained on), the asker, the message, the real reply, the base
model's reply (the LoRA disabled) and the tuned model's, each generated greedily in torch from
the same tagged prompt training used (``dialogues.prompt_of``) and cut at the end of the line.
Returned as plain dicts; nothing is written anywhere (they hold people's words, so they live
only as long as the caller keeps them).
"""

from __future__ import annotations

from assistant.training.dialogues import prompt_of


def before_and_after(result, count: int = 3, max_new_tokens: int = 24) -> list[dict]:
    model, tokenizer = result.model, result.tokenizer
    samples = []
    for example in result.validation[:count]:
        prompt = prompt_of(example, result.config.tagged)
        with model.disable_adapter():
            before = _generate(model, tokenizer, prompt, max_new_tokens)
        after = _generate(model, tokenizer, prompt, max_new_tokens)
        samples.append({"asker": example.querier, "message": example.query, "real": example.reply,
                        "before": before, "after": after})
    return samples


def _generate(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    import torch

    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.eval()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=pad, repetition_penalty=1.1, no_repeat_ngram_size=3)
    text = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    return text.split("\n", 1)[0].strip()
