"""The local model answering with the tuned adapter: the ``ChatModel`` ``Models`` picks for a
local turn once ``confidant tune`` has made one.

Contract of ``TunedLocal.open(local, settings)`` (``local`` a getter of the ``LocalModel``):
``None`` when no adapter is in the data dir
(or ``settings.use_tuned_model`` is off); an adapter made for another base model is an
``AdapterError`` (``training.adapter.load_info``). ``answer(question)`` answers the turn with
the tagged prompt training used (``training.dialogues.turn_prompt`` from the turn's stored
context), with the turn's sampling and the adapter's length prior (``serving.reply_length``: a
length drawn from the train replies', seeded by the turn's seed and text when it has one; the
line may not end before it and ends at the first sentence end after it), under the local model's lock (one generation at a time on
the device). It answers with the adapter merged into a copy of the base model
(``training.adapter.merged_model``, built on first use when training did not), a second
llama.cpp model that decodes at the base model's speed; if that cannot be built or loaded, with
the adapter put on the local model's own llama.cpp model for the turn and taken off after, so
every other use of the model gets the base. Both are made by ``models.llama_runtime``.
``name`` says on the status line that the tuned model answered. An adapter deleted since it was opened (privacy) is noticed at the next
turn (``available``): that turn and later ones use the base; one retrained since is opened afresh.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator

from assistant.errors import AdapterError, ModelError
from assistant.models.sentences import end_at_sentence
from assistant.settings import Settings
from assistant.training import adapter
from assistant.training.dialogues import turn_prompt
from assistant.training.serving import AdapterSwitch, reply_completion, reply_length
from assistant.turn_options import Sampling

log = logging.getLogger(__name__)


class TunedLocal:
    """A ``ChatModel``: the local model with the tuned adapter on, for one turn at a time."""

    where = "local"

    def __init__(self, local, settings: Settings, info: dict):
        self.local, self.settings, self.info = local, settings, info
        self.path = adapter.adapter_path(settings.data_dir)
        self._stamp = self.path.stat().st_mtime_ns
        self.llm, self.switch = self._model()
        self.name = f"{local.name} + tuned ({info['created_at'][:10]})"

    @classmethod
    def open(cls, local: Callable[[], object], settings: Settings) -> "TunedLocal | None":
        """``local`` is a getter of the ``LocalModel``: it loads only when there is an adapter."""
        if not settings.use_tuned_model:
            return None
        info = adapter.load_info(settings.data_dir, settings.model_path)
        return cls(local(), settings, info) if info else None

    @property
    def available(self) -> bool:
        """Whether the adapter this was opened with is still the one in the data dir."""
        try:
            return self.path.stat().st_mtime_ns == self._stamp
        except FileNotFoundError:
            return False

    def _model(self):
        """(the llama.cpp model to answer with, the switch to put the adapter on it or ``None``)."""
        from assistant.models.llama_runtime import create_llama

        s = self.settings
        try:
            merged = adapter.merged_model(s.data_dir, s.model_path)
            return create_llama(model_path=str(merged), n_ctx=s.n_ctx, n_threads=s.n_threads, n_batch=512,
                                verbose=False), None
        except (OSError, ValueError, AdapterError) as error:  # e.g. a full disk: slower, not broken
            log.warning("answering with the adapter on the base model: no merged model (%s)", error)
            return self.local.llm, AdapterSwitch(self.local.llm)

    def close(self) -> None:
        with self.local._lock:
            if self.switch is not None:
                self.switch.close()
            else:
                self.llm.close()

    def answer(self, question) -> Iterator[str]:
        s = self.settings
        use = question.options.sampling or Sampling.of(s)
        prompt = turn_prompt(question.context, question.speaker, question.text)
        quantiles, lead = adapter.length_prior(self.info)
        length = reply_length(quantiles, use.seed, question.text, lead)
        with self.local._lock:
            try:
                if self.switch is not None:
                    self.switch.use(self.path, 1.0)
                chunks = reply_completion(self.llm, prompt, length, stop=use.stop,
                                          stream=True, **use.llama_kwargs(s))
                yield from end_at_sentence(chunks, use.max_tokens)
            except (RuntimeError, ValueError) as error:
                raise ModelError(f"the tuned local model failed while generating: {error}") from None
            finally:
                if self.switch is not None:
                    self.switch.use(None)
