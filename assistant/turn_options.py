"""Per-turn overrides a caller may ask for: sampling within the settings' bounds, and extra
instructions added after the persona.

Contract:
- ``Sampling.within(settings, ...)`` takes the values a caller asked for (``None`` = "use the
  setting") and returns the sampling for one reply: ``max_tokens`` is capped at the
  ``max_tokens`` setting (never more work than the household allowed), ``temperature`` and
  ``top_p`` must lie in the settings' own bounds, at most ``MAX_STOPS`` stop strings. Anything
  else is an ``InputError`` naming the value.
- ``TurnOptions`` carries a ``Sampling`` (or none: the settings') and ``instructions``, text the
  caller's app wants the model to follow (checked against ``max_chars`` by ``instructions_within``),
  and ``tuned``: whether a tuned adapter may answer (off: the base local model).
- ``Sampling.llama_kwargs(settings)``: the sampling as llama.cpp completion keywords.
The local and the cloud backends read these; the pipeline passes them through unchanged.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from assistant.errors import InputError
from assistant.settings import Settings

MAX_STOPS = 4  # as OpenAI's API
MAX_STOP_CHARS = 200


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> "Sampling":
        return cls(settings.max_tokens, settings.temperature, settings.top_p, settings.seed)

    def llama_kwargs(self, settings: Settings) -> dict:
        """This sampling as ``llama_cpp.Llama.create_completion`` keywords, with the settings' own
        top_k and penalties (one place, so every local decode samples alike)."""
        return {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p,
                "top_k": settings.top_k, "repeat_penalty": settings.repeat_penalty,
                "presence_penalty": settings.presence_penalty, "frequency_penalty": settings.frequency_penalty,
                "seed": self.seed}

    @classmethod
    def within(cls, settings: Settings, max_tokens: int | None = None, temperature: float | None = None,
               top_p: float | None = None, seed: int | None = None, stop: list[str] | str | None = None) -> "Sampling":
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise InputError("max_tokens must be a positive whole number.")
        _check_range("temperature", temperature)
        _check_range("top_p", top_p)
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        if len(stops) > MAX_STOPS or any(not isinstance(s, str) or not s or len(s) > MAX_STOP_CHARS for s in stops):
            raise InputError(f"stop takes at most {MAX_STOPS} non-empty strings of up to {MAX_STOP_CHARS} characters.")
        return cls(
            max_tokens=min(max_tokens or settings.max_tokens, settings.max_tokens),
            temperature=settings.temperature if temperature is None else float(temperature),
            top_p=settings.top_p if top_p is None else float(top_p),
            seed=settings.seed if seed is None else int(seed),
            stop=stops,
        )


@dataclass(frozen=True)
class TurnOptions:
    sampling: Sampling | None = None
    instructions: str = ""
    tuned: bool = True  # False: the base local model even when a tuned adapter exists (a per-login choice)


def instructions_within(text: str, max_chars: int) -> str:
    """The caller's instructions, refused (never cut) when longer than ``max_chars``."""
    text = text.strip()
    if len(text) > max_chars:
        raise InputError(f"The system message is {len(text):,} characters long; at most {max_chars:,} are accepted "
                         "(setting api_system_chars). Please shorten it.")
    return text


def _check_range(name: str, value) -> None:
    """``value`` within the bounds the setting ``name`` itself has (its Field's ge/gt/le)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number.")
    bounds = {attr: getattr(b, attr) for b in Settings.model_fields[name].metadata
              for attr in ("ge", "gt", "le") if hasattr(b, attr)}
    tests = {"ge": (operator.ge, "≥"), "gt": (operator.gt, ">"), "le": (operator.le, "≤")}
    if not all(tests[attr][0](value, limit) for attr, limit in bounds.items()):
        allowed = " and ".join(f"{tests[attr][1]} {limit}" for attr, limit in bounds.items())
        raise InputError(f"{name} must be {allowed}; got {value}.")
