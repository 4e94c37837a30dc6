"""Example replies before and after teaching, on held-out exchanges: what the UI shows as the result.

Contract of ``before_and_after(result, settings, adapter_file, count=3)``: for up to ``count`` of
the run's validation dialogues (never trained on), the asker, the message, the real reply, the
base model's reply and the tuned model's, from the same tagged prompt training used
(``dialogues.prompt_of``). Both are decoded through llama.cpp as the benchmark measures a tuned
reply (``serving.AdapterSwitch``, the saved ``adapter_file`` on the process's shared base model
``LocalModel.shared``, under its lock, or off for the base): the settings' sampling (``Sampling.of``), one line, and for the tuned reply the adapter's
length prior (``serving.reply_length``). So "after" shows what a tuned turn says, not a greedy
torch decode it never makes. Returned as plain dicts; nothing is written anywhere (they hold
people's words, so they live only as long as the caller keeps them).
"""

from __future__ import annotations

from pathlib import Path

from assistant.settings import Settings
from assistant.training.dialogues import prompt_of
from assistant.training.serving import AdapterSwitch, reply_length
from assistant.turn_options import Sampling

MAX_TOKENS = 64  # one line: a tuned reply ends at its line's end well before this


def before_and_after(result, settings: Settings, adapter_file: Path, count: int = 3) -> list[dict]:
    from assistant.models.local import LocalModel

    sampling = {**Sampling.of(settings).llama_kwargs(settings), "max_tokens": MAX_TOKENS}
    local = LocalModel.shared(settings)  # the process's base model, not a second copy; its lock: one request at a time
    with local._lock:
        switch = AdapterSwitch(local.llm)
        try:
            return [_before_and_after(switch, result, example, adapter_file, sampling)
                    for example in result.validation[:count]]
        finally:
            switch.close()  # the adapter off again: the shared model answers base turns


def _before_and_after(switch, result, example, adapter_file: Path, sampling: dict) -> dict:
    prompt = prompt_of(example, result.config.tagged)
    switch.use(None)
    before = switch.generate(prompt, **sampling)
    switch.use(adapter_file, 1.0)
    length = reply_length(result.reply_length_quantiles, sampling["seed"], example.query, result.sentence_lead)
    after = switch.generate(prompt, length, **sampling)
    return {"asker": example.querier, "message": example.query, "real": example.reply, "before": before, "after": after}
