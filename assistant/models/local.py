"""The local chat model: llama.cpp through llama-cpp-python.

Contract:
- ``LocalModel.shared(settings)`` loads a GGUF once per process and hands out the same object.
- ``render(messages)`` turns chat messages into the prompt with the GGUF's own chat template
  (rendered by llama-cpp-python's sandboxed Jinja formatter), and ``fit(messages)`` drops the
  oldest history until prompt + reply fit the context window.
- The template is code shipped inside the model file: it is tried once at load time, and a
  template that does not compile, tries something the sandbox forbids or fails to render is a
  ``ModelError`` naming the file, at load time or at the turn, never a raw Jinja error.
- ``stream(prompt)`` yields the reply as text chunks, one generation at a time: a lock keeps
  concurrent users from corrupting the shared llama.cpp state; others wait their turn. It samples
  as the settings say, or as a turn's ``Sampling`` (``assistant.turn_options``) says, with the
  settings' repeat/presence/frequency penalties, and ends at a sentence (or marks the cut) near
  ``max_tokens`` (``sentences.end_at_sentence``).
The engine knows nothing about who is asking or where the messages came from.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from jinja2 import TemplateError

from assistant.errors import InputError, ModelError
from assistant.models.sentences import end_at_sentence
from assistant.settings import Settings
from assistant.turn_options import Sampling

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: its tokens, its stop strings and how many earlier turns it kept."""

    text: str
    tokens: list[int]
    stop: list[str]
    kept_history: int


class LocalModel:
    _shared: dict[tuple, "LocalModel"] = {}
    _shared_lock = threading.Lock()

    def __init__(self, settings: Settings):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from assistant.models.llama_runtime import create_llama

        self.settings = settings
        self.path = Path(settings.model_path)
        try:
            self.llm = create_llama(
                model_path=str(self.path),
                n_ctx=settings.n_ctx,
                n_threads=settings.n_threads,
                n_batch=512,
                verbose=False,
            )
        except TemplateError as error:  # llama-cpp-python compiles the template while loading
            raise self._template_error(error) from None
        except (ValueError, RuntimeError, OSError) as error:
            raise ModelError(
                f"could not load the local model {self.path}: {_first_line(error)}. "
                "Check that CONFIDANT_MODEL_PATH points to a valid GGUF file."
            ) from None
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"the model {self.path} has no chat template; use an instruct/chat GGUF")
        try:
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=self._token_text(self.llm.token_eos()),
                bos_token=self._token_text(self.llm.token_bos()),
            )
        except TemplateError as error:
            raise self._template_error(error) from None
        self.name = self.path.stem.removesuffix(".gguf")
        self._lock = threading.Lock()
        self.render([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])  # fail here, not mid-chat

    @classmethod
    def shared(cls, settings: Settings) -> "LocalModel":
        """The process-wide model for these settings, loaded on first use."""
        key = (str(settings.model_path), settings.n_ctx, settings.n_threads)
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(settings)
            return cls._shared[key]

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    def _template_error(self, error: Exception) -> ModelError:
        return ModelError(
            f"the chat template inside the model {self.path} cannot be used ({type(error).__name__}: "
            f"{_first_line(error)}); use a GGUF with a standard chat template"
        )

    def render(self, messages: list[Message]) -> tuple[str, list[int], list[str]]:
        try:
            formatted = self._formatter(messages=messages)
        except Exception as error:  # the template is the model file's code: whatever it raises is its fault
            raise self._template_error(error) from None
        tokens = self.llm.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
        return formatted.prompt, tokens, stop

    def fit(self, system: Message, history: list[Message], message: Message) -> Prompt:
        """Render, dropping the oldest history (a user/assistant pair at a time) until it fits."""
        budget = self.settings.n_ctx - self.settings.max_tokens
        while True:
            text, tokens, stop = self.render([system, *history, message])
            if len(tokens) <= budget:
                return Prompt(text, tokens, stop, kept_history=len(history) // 2)
            if not history:
                raise InputError(
                    f"This message is too long for the local model ({len(tokens)} tokens with the instructions; "
                    f"at most {budget} fit). Please shorten it."
                )
            history = history[2:]

    def warm_up(self) -> None:
        """Evaluate one short prompt and sample one token: llama.cpp's first evaluation pays for
        setting up its buffers, and it should not be a person's first reply that pays."""
        with self._lock:
            try:
                self.llm.create_completion(self.llm.tokenize(b"Hello"), max_tokens=1, temperature=0)
            except (RuntimeError, ValueError) as error:
                raise ModelError(f"the local model failed while generating: {error}") from None

    def stream(self, prompt: Prompt, seed: int | None = None, stop: list[str] = (),
               sampling: Sampling | None = None) -> Iterator[str]:
        """Yield the reply to ``prompt`` chunk by chunk; waits while another reply is generated.
        ``sampling`` overrides the settings' (already within their bounds, see ``Sampling.within``)."""
        use = sampling or Sampling.of(self.settings)
        if seed is not None:
            use = replace(use, seed=seed)
        with self._lock:
            try:
                chunks = self.llm.create_completion(
                    prompt.tokens, **use.llama_kwargs(self.settings),
                    stop=[*prompt.stop, *stop, *use.stop], stream=True,
                )
                yield from end_at_sentence(chunks, use.max_tokens)
            except (RuntimeError, ValueError) as error:
                raise ModelError(f"the local model failed while generating: {error}") from None


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__
