"""Example replies before and after teaching, on held-out exchanges: what the UI shows as the result.

Contract of ``before_and_after(result, settings, adapter_file, count=3)``: for up to ``count`` of
the run's validation dialogues (never trained on), the asker, the message, the real reply, the
base model's reply and the tuned model's, from the same tagged prompt training used
(``dialogues.prompt_of``). Both are decoded through llama.cpp as the benchmark measures a tuned
reply (``serving.AdapterSwitch``, the saved ``adapter_file`` on the bundled model, or off for the
base): the settings' sampling (``Sampling.of``), one line, and for the tuned reply the adapter's
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
    from assistant.models.llama_runtime import create_llama

    sampling = {**Sampling.of(settings).llama_kwargs(settings), "max_tokens": MAX_TOKENS}
    llm = create_llama(model_path=str(settings.model_path), n_ctx=settings.n_ctx, n_threads=settings.n_threads,
                       n_batch=512, verbose=False)
    switch = AdapterSwitch(llm)
    samples = []
    try:
        for example in result.validation[:count]:
            prompt = prompt_of(example, result.config.tagged)
            switch.use(None)
            before = switch.generate(prompt, **sampling)
            switch.use(adapter_file, 1.0)
            length = reply_length(result.reply_length_quantiles, sampling["seed"], example.query, result.sentence_lead)
            after = switch.generate(prompt, length, **sampling)
            samples.append({"asker": example.querier, "message": example.query, "real": example.reply,
                            "before": before, "after": after})
    finally:
        switch.close()
        llm.close()
    return samples
