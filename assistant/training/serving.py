"""A tuned adapter applied to one loaded llama.cpp model, switched per request.

Contract of ``AdapterSwitch(llm)`` (``llm`` a ``llama_cpp.Llama`` made by
``assistant.models.llama_runtime.create_llama``, so the AMX fix holds):
- ``load(path)`` reads a GGUF LoRA adapter into the model (``llama_adapter_lora_init``) once per
  path; a file llama.cpp refuses (another architecture, damaged) is an ``AdapterError``.
- ``use(path, scale)`` puts that adapter on the context at ``scale`` (``llama_set_adapters_lora``);
  ``use(None)`` takes every adapter off, and so does scale 0 in effect: the base model exactly.
  A change of adapter or scale also drops llama-cpp-python's cached prompt, whose keys and
  values were computed by the other weights.
- ``generate(prompt, length=0, **sampling)`` answers a tagged prompt (``dialogues.render_prompt``)
  as text, up to the end of the reply's line, through ``reply_completion(llm, prompt, length,
  ...)``, which the tuned live turn uses too. The length prior: the line may not end (newline or
  end of text) before ``length`` tokens, and from there ends at its first sentence end (a token
  whose text ends in ``.``, ``!`` or ``?``), so the reply is about that long.
- ``reply_length(quantiles, seed, text, lead=0)``: that ``length`` for one reply to ``text``: a
  draw from the train replies' token-length quantiles (``trainer.reply_length_quantiles``, kept
  in the adapter's metadata) less ``lead`` (``trainer.sentence_lead``), seeded by ``seed`` and
  ``text`` (a seed of None or -1: a fresh draw).
The caller serialises requests on one model (``LocalModel`` holds a lock per model).
"""

from __future__ import annotations

import ctypes
import random
import weakref
from pathlib import Path

import numpy as np
from llama_cpp import llama_cpp as bindings

from assistant.errors import AdapterError
from assistant.training.dialogues import ends_sentence


class AdapterSwitch:
    def __init__(self, llm):
        self.llm = llm
        self._loaded: dict[str, object] = {}
        self._current: tuple[str | None, float] = (None, 0.0)

    def load(self, path: Path):
        key = str(Path(path).resolve())
        if key not in self._loaded:
            if not Path(key).is_file():
                raise AdapterError(f"no adapter file at {key}")
            adapter = bindings.llama_adapter_lora_init(self.llm._model.model, key.encode("utf-8"))
            if not adapter:
                raise AdapterError(f"llama.cpp could not load the adapter {key} for this model; retrain it (confidant tune)")
            self._loaded[key] = adapter
        return key, self._loaded[key]

    def use(self, path: Path | None, scale: float = 1.0) -> None:
        wanted = (None, 0.0) if path is None or scale == 0 else (self.load(path)[0], float(scale))
        if wanted == self._current:
            return
        if wanted[0] is None:
            failed = bindings.llama_set_adapters_lora(self.llm._ctx.ctx, None, 0, None)
        else:
            adapters = (bindings.llama_adapter_lora_p_ctypes * 1)(self._loaded[wanted[0]])
            scales = (ctypes.c_float * 1)(wanted[1])
            failed = bindings.llama_set_adapters_lora(self.llm._ctx.ctx, adapters, 1, scales)
        if failed:
            raise AdapterError("llama.cpp could not apply the adapter to this model")
        self.llm.reset()  # the cached prompt's keys and values came from the other weights
        self._current = wanted

    def close(self) -> None:
        """Take every adapter off and free them (the model itself stays)."""
        self.use(None)
        for adapter in self._loaded.values():
            bindings.llama_adapter_lora_free(adapter)
        self._loaded.clear()

    def generate(self, prompt: str, length: int = 0, **sampling) -> str:
        """The reply line to ``prompt`` as text (``reply_completion``; ``sampling`` as
        ``Sampling.llama_kwargs``, default greedy with a mild repetition penalty)."""
        sampling = {"max_tokens": 64, "temperature": 0.0, "repeat_penalty": 1.1, "seed": 0, **sampling}
        out = reply_completion(self.llm, prompt, length, **sampling)
        return out["choices"][0]["text"].strip()


def reply_completion(llm, prompt: str, length: int = 0, stop=(), **sampling):
    """``llm.create_completion`` of one reply line to a tagged prompt: it ends at the first
    newline; with a ``length`` (the length prior) it may not end before that many tokens and ends
    at its first sentence end after them. ``sampling``: the completion's other keywords
    (``stream`` too)."""
    processors = None
    if length > 0:
        from llama_cpp import LogitsProcessorList

        start = len(llm.tokenize(prompt.encode("utf-8")))
        processors = LogitsProcessorList([_held_to(length, start, line_end_tokens(llm), sentence_end_tokens(llm),
                                                   llm.token_eos())])
    return llm.create_completion(prompt, stop=["\n", *stop], logits_processor=processors, **sampling)


def reply_length(quantiles: list[int], seed: int | None, text: str, lead: float = 0.0) -> int:
    """The tokens one tuned reply to ``text`` is held to before it may end: a draw from the train
    replies' token lengths (their ``quantiles`` at evenly spaced levels, interpolated; one value:
    that value), less ``lead``, the way a reply still runs on to its sentence's end (at least 1;
    0 when the draw is 0: no prior). Seeded by ``seed`` and ``text``, so one question asked as
    different people draws alike; a seed of None or -1 (the settings' "random per reply") draws
    afresh. Replies then come in the real replies' spread of lengths: a stock short line can end
    only those whose draw is that short, where a fixed floor below its length never acts on it."""
    if not quantiles:
        return 0
    key = f"{seed}:{text}" if seed is not None and seed >= 0 else None
    share = random.Random(key).random()
    drawn = float(np.interp(share, np.linspace(0, 1, len(quantiles)), quantiles))
    return max(1, round(drawn - lead)) if drawn > 0 else 0


def _held_to(length: int, prompt_tokens: int, ends: list[int], sentence_ends: frozenset[int], eos: int):
    def processor(input_ids, scores):
        made = len(input_ids) - prompt_tokens
        if made < length:
            scores[ends] = -float("inf")
        elif int(input_ids[-1]) in sentence_ends:  # long enough, and a sentence just ended
            scores[:] = -float("inf")
            scores[eos] = 0.0
        return scores

    return processor


_ENDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # llm -> (line ends, sentence ends)


def _ends(llm) -> tuple[list[int], frozenset[int]]:
    """Both token lists of ``line_end_tokens`` and ``sentence_end_tokens``, from one pass over the
    vocabulary per model."""
    if llm not in _ENDS:
        texts = [llm.detokenize([t]) for t in range(llm.n_vocab())]
        lines = [t for t, text in enumerate(texts) if b"\n" in text] + [llm.token_eos()]
        sentences = frozenset(t for t, text in enumerate(texts) if ends_sentence(text.decode("utf-8", "replace")))
        _ENDS[llm] = lines, sentences
    return _ENDS[llm]


def line_end_tokens(llm) -> list[int]:
    """Tokens that end the reply: end of text and every token whose text holds a newline."""
    return _ends(llm)[0]


def sentence_end_tokens(llm) -> frozenset[int]:
    """Tokens whose text ends a sentence: ``.``, ``!`` or ``?``, maybe followed by a closing quote
    or bracket."""
    return _ends(llm)[1]


def next_token_logits(llm, prompt: str) -> "np.ndarray":
    """The model's logits for the token after ``prompt`` (evaluated afresh), as a float32 copy."""
    llm.reset()
    llm.eval(llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
    pointer = bindings.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),)).copy()
