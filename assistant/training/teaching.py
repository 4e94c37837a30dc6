"""Teaching the local model from a face that must stay responsive: the plan, and one background run.

Contract:
- ``plan(settings, store, config)`` says what a run would learn from and how long it would take:
  per person the counts of each source (``dialogues.source_counts``), the totals, whether there
  is enough (else ``message`` is ``adapter.require_enough``'s, saying what is needed), and an
  estimate of the training time: the dialogues' tokens (about ``CHARS_PER_TOKEN`` characters a
  token, each cut at ``config.max_tokens``) over a tokens/s figure. That figure is the one the
  adapter in the data dir measured on this device when there is one trained at the precision this
  run will use (``config.bf16``), else ``PRIOR_TOKENS_PER_S`` for that precision (what the
  benchmarks measured on 2 cores); ``rate_source`` says which.
- ``Teaching.of(settings)`` is the one run of a data dir (one per process): ``start(store, ...)``
  begins ``teach.teach`` in a daemon thread and returns at once; a second start while one runs is a
  ``TrainingError`` saying one is running. ``status()`` is a snapshot (``Status``): the phase,
  the trainer's last ``Progress``, and at the end the result (the adapter's metadata with example
  replies before and after) or the error's message. ``cancel()`` asks the run to stop between
  steps; a cancelled run writes nothing and the adapter in use, if any, stays.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from assistant.errors import AdapterError, ConfidantError, TrainingCancelled, TrainingError
from assistant.settings import Settings
from assistant.training import adapter
from assistant.training.dialogues import learnable, prompt_of, source_counts

CHARS_PER_TOKEN = 4  # SmolLM2's tokenizer on English chat text, roughly; only for the estimate
# Before this device has measured its own rate: medians of the trainings on 2 cores in docs/tuning.md
# (float32: the 12 of eval personalization on a Xeon and an EPYC, 131-259 tokens/s; bf16, which
# only CPUs with native bf16 use: the 6 of eval contrast-weight on the EPYC).
PRIOR_TOKENS_PER_S = {False: 214.0, True: 196.0}
SAMPLES = 3  # example replies before and after, on held-out exchanges
_RUNS: dict[str, "Teaching"] = {}  # one run per data dir, shared by every login of this process
_RUNS_LOCK = threading.Lock()


@dataclass(frozen=True)
class Plan:
    people: dict[str, dict[str, int]]  # {person: {"imported", "corrected", "cloud"}}
    exchanges: int
    enough: bool
    message: str  # what is needed, when not enough
    steps: int
    tokens: int
    tokens_per_s: float
    rate_source: str
    seconds: float


def plan(settings: Settings, store, config) -> Plan:
    examples = learnable(store)
    counts = source_counts(store)
    try:
        adapter.require_enough(examples)
        enough, message = True, ""
    except TrainingError as error:
        enough, message = False, str(error)
    held = min(64, int(len(examples) * config.validation_share))
    trained = examples[held:]
    tokens = sum(min(config.max_tokens, math.ceil(len(prompt_of(e) + e.reply) / CHARS_PER_TOKEN)) for e in trained)
    tokens = int(tokens * config.epochs)
    epoch_steps = max(1, math.ceil(config.epochs * len(trained) / config.batch))
    steps = config.steps or epoch_steps  # set steps override the epochs (``trainer.TuneConfig``)
    tokens = int(tokens * steps / epoch_steps)
    rate, source = _rate(settings, config.bf16)
    seconds = tokens / rate
    if config.minutes is not None:
        seconds = min(seconds, config.minutes * 60)
    return Plan(counts, len(examples), enough, message, steps, tokens, rate, source, seconds)


def _rate(settings: Settings, bf16: bool) -> tuple[float, str]:
    try:
        info = adapter.load_info(settings.data_dir, settings.model_path)
    except AdapterError:
        info = None
    precision = "bf16" if bf16 else "float32"
    if info and info.get("tokens_per_s"):
        if bool(info.get("settings", {}).get("bf16")) == bf16:
            return float(info["tokens_per_s"]), f"measured by the last training on this device ({info['created_at'][:10]})"
        return PRIOR_TOKENS_PER_S[bf16], (f"the benchmarks measured on 2 cores in {precision} (the last training "
                                          "on this device used the other precision)")
    return PRIOR_TOKENS_PER_S[bf16], f"the benchmarks measured on 2 cores in {precision} (this device has not trained yet)"


@dataclass(frozen=True)
class Status:
    state: str = "idle"  # idle, running, done, cancelled, failed
    phase: str = ""  # what a running job is doing
    progress: object = None  # trainer.Progress after the last step
    result: dict | None = None
    error: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass
class Teaching:
    settings: Settings
    _status: Status = field(default_factory=Status)
    _cancel: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, settings: Settings) -> "Teaching":
        key = str(Path(settings.data_dir).resolve())
        with _RUNS_LOCK:
            if key not in _RUNS:
                _RUNS[key] = cls(settings)
            return _RUNS[key]

    def status(self) -> Status:
        return self._status

    def start(self, store, seed: int = 0, minutes: float | None = None, config=None) -> None:
        with self._lock:
            if self._status.running:
                raise TrainingError("A training is already running (started from this or another login); "
                                    "wait for it to finish or cancel it.")
            self._cancel = threading.Event()
            self._status = Status("running", "loading the model and measuring the held-out loss")
        threading.Thread(target=self._run, args=(store, seed, minutes, config), daemon=True,
                         name="teach-local-model").start()

    def cancel(self) -> None:
        if self._status.running:
            self._cancel.set()
            self._status = replace(self._status, phase="cancelling after this step")

    def _step(self, progress) -> None:
        if self._cancel.is_set():
            phase = self._status.phase
        elif progress.step < progress.planned:
            phase = "training"
        else:
            phase = "measuring the held-out loss again, writing example replies and saving"
        self._status = replace(self._status, phase=phase, progress=progress)

    def _run(self, store, seed, minutes, config) -> None:
        from assistant.training.teach import teach  # torch: only when teaching

        try:
            info = teach(self.settings, store, seed=seed, minutes=minutes, cancel=self._cancel, progress=False,
                         config=config, on_step=self._step, samples=SAMPLES)
            self._status = replace(self._status, state="done", phase="", result=info)
        except TrainingCancelled as error:
            self._status = replace(self._status, state="cancelled", phase="", error=str(error))
        except ConfidantError as error:
            self._status = replace(self._status, state="failed", phase="", error=str(error))
        except Exception as error:  # a background thread has no caller to raise to: say it on the page
            self._status = replace(self._status, state="failed", phase="", error=f"training failed: {error}")

