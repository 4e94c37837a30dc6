"""The local model answering with the tuned adapter: what a live turn uses once one is trained.

Contract of ``TunedLocal.open(local, settings)``: ``None`` when no adapter is in the data dir
(or ``settings.use_tuned_model`` is off); an adapter made for another base model is an
``AdapterError`` (``adapter.load_info``). ``stream(exchange, asker)`` answers the begun turn
with the tagged prompt training used (``dialogues.live_prompt``), under the local model's lock,
and takes the adapter off again afterwards, so every other use of the model gets the base.
``name`` says on the status line that the tuned model answered. An adapter deleted since it
was opened (privacy) is noticed at the next turn: that turn and later ones use the base; one
retrained since is opened afresh.
"""

from __future__ import annotations

from typing import Iterator

from assistant.errors import ModelError
from assistant.settings import Settings
from assistant.training import adapter
from assistant.training.dialogues import live_prompt
from assistant.training.serving import AdapterSwitch


class TunedLocal:
    def __init__(self, local, settings: Settings, info: dict):
        self.local, self.settings, self.info = local, settings, info
        self.path = adapter.adapter_path(settings.data_dir)
        self.switch = AdapterSwitch(local.llm)
        self._stamp = self.path.stat().st_mtime_ns
        self.name = f"{local.name} + tuned ({info['created_at'][:10]})"

    @classmethod
    def open(cls, local, settings: Settings) -> "TunedLocal | None":
        if not settings.use_tuned_model:
            return None
        info = adapter.load_info(settings.data_dir, settings.model_path)
        return cls(local, settings, info) if info else None

    @property
    def available(self) -> bool:
        """Whether the adapter this was opened with is still the one in the data dir."""
        try:
            return self.path.stat().st_mtime_ns == self._stamp
        except FileNotFoundError:
            return False

    def close(self) -> None:
        with self.local._lock:
            self.switch.close()

    def stream(self, exchange, asker: str) -> Iterator[str]:
        s = self.settings
        prompt = live_prompt(exchange, asker)
        with self.local._lock:
            try:
                self.switch.use(self.path, 1.0)
                for chunk in self.local.llm.create_completion(
                    prompt, max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k,
                    repeat_penalty=s.repeat_penalty, seed=s.seed, stop=["\n"], stream=True,
                ):
                    text = chunk["choices"][0]["text"]
                    if text:
                        yield text
            except (RuntimeError, ValueError) as error:
                raise ModelError(f"the tuned local model failed while generating: {error}") from None
            finally:
                self.switch.use(None)
