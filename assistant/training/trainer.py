"""The training loop: LoRA (+ the querier-aware term) on speaker-tagged dialogues.

Contract of ``tune(examples, model_path, config, cancel=None, progress=True)``:
- Seeded (``config.seed``: Python, NumPy and torch), using ``config.threads`` torch threads.
- A validation split (``config.validation_share``, at most ``MAX_VALIDATION`` dialogues) is
  carved from the examples before training and never trained on; its mean per-token NLL of the
  reply is measured before and after (``TuneResult.val_nll_before`` / ``val_nll_after``).
- AdamW at ``config.lr`` with a cosine schedule over the planned steps (``config.epochs`` passes,
  or ``config.steps``), stopping early when ``config.minutes`` have passed.
- Loss = LM loss on the reply's tokens + ``config.contrast_weight`` × the querier contrast
  (``querier_loss``), the latter only when the prompt names the querier (``config.tagged``).
  The default weight is 0: chosen on held-out train dialogues (``evaluation.contrast_weight``),
  where the paper's 0.5 cost fit; the term stays selectable.
- ``TuneResult.reply_length_quantiles`` and ``sentence_lead``: the length prior a tuned reply is
  decoded with (the train replies' token lengths, every 5 %; the tokens from a point inside a
  train reply to its next sentence end, on average: ``sentence_lead``).
- ``config.bf16``: the forward pass runs under bf16 autocast (``TuneConfig.from_settings`` sets
  it where the CPU computes bf16 natively); the LoRA weights, AdamW and the loss stay float32.
- A tqdm bar shows the loss, tokens/s and the time left; ``on_step(Progress)``, when given, is
  called after every step with the same figures (the UI's progress bar). ``cancel`` (a ``threading.Event``) is
  checked between steps: a cancelled run raises ``TrainingCancelled`` and returns nothing, so
  nothing is ever written from it.
- Nothing is written to disk here; ``export`` writes the adapter.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from assistant.errors import TrainingCancelled
from assistant.training.dialogues import Example, ends_sentence, prompt_of, reply_text
from assistant.training.model import IGNORE, add_lora, encode, load_base, reply_scores

MAX_VALIDATION = 64
LENGTH_LEVELS = 21  # quantiles of the train replies' token lengths kept as the length prior: every 5 %


@dataclass(frozen=True)
class TuneConfig:
    r: int = 16
    alpha: float = 8.0
    dropout: float = 0.0  # LoRA dropout drew a mask per layer: a fifth of a step, for less than an epoch
    lr: float = 2e-4
    batch: int = 4
    max_tokens: int = 128
    epochs: float = 1.0
    steps: int | None = None  # overrides epochs when set
    minutes: float | None = None
    contrast_weight: float = 0.0  # the paper's 0.5 cost held-out fit on both responders tuned (docs/tuning.md)
    tagged: bool = True  # False: the plain fine-tune baseline (no querier tag, no contrast)
    validation_share: float = 0.05
    seed: int = 0
    threads: int = 1
    warmup: int = 5
    top_layers: int | None = None  # LoRA on the top N layers only (None: all, the paper's setting)
    bf16: bool = False  # bf16 autocast for the matrix products: only where the CPU has bf16 units

    @classmethod
    def from_settings(cls, settings, **overrides) -> TuneConfig:
        """The product's run: the machine's threads and ``train_precision`` read on this CPU, the
        method's defaults unless ``overrides`` say otherwise."""
        from profiles.tower import wants_bf16

        return cls(**{"threads": settings.n_threads, "bf16": wants_bf16(settings.train_precision), **overrides})

    def settings(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Progress:
    """Where a training run is after a step: what ``on_step`` receives."""

    step: int
    planned: int
    loss: float
    tokens_per_s: float
    seconds_left: float


@dataclass
class TuneResult:
    model: object  # the peft model
    tokenizer: object
    config: TuneConfig
    train: list[Example]
    validation: list[Example]
    losses: list[float] = field(default_factory=list)
    val_nll_before: float = float("nan")
    val_nll_after: float = float("nan")
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    reply_length_quantiles: list[int] = field(default_factory=list)  # the length prior (``reply_length_quantiles``)
    sentence_lead: float = 0.0  # how far short of its draw a reply may end (``sentence_lead``)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def split(examples: list[Example], share: float, seed: int) -> tuple[list[Example], list[Example]]:
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = min(MAX_VALIDATION, int(len(examples) * share)) if share > 0 else 0
    held = set(order[:n_val])
    return [e for i, e in enumerate(examples) if i not in held], [examples[i] for i in sorted(held)]


def collate(rows: list[tuple[list[int], list[int]]], pad: int):
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(rows):
        ids[i, : len(row_ids)] = torch.tensor(row_ids)
        labels[i, : len(row_labels)] = torch.tensor(row_labels)
        attention[i, : len(row_ids)] = 1
    return ids, labels, attention


def encoded(tokenizer, examples: list[Example], config: TuneConfig, tagged: bool | None = None):
    tagged = config.tagged if tagged is None else tagged
    return [encode(tokenizer, prompt_of(e, tagged), reply_text(e.reply), config.max_tokens) for e in examples]


def token_nlls(model, tokenizer, rows, batch: int = 8) -> np.ndarray:
    """Mean NLL per reply token of each encoded (ids, labels) row, in order (no gradient)."""
    import torch
    import torch.nn.functional as F

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            ids, labels, attention = collate(rows[start : start + batch], pad)
            _, logits, targets, scored = reply_scores(model, ids, labels, attention)
            nll = F.cross_entropy(logits, targets, reduction="none")
            row = scored.nonzero()[:, 0]
            sums = torch.zeros(len(ids)).index_add_(0, row, nll)
            out += (sums / scored.sum(1).clamp(min=1)).tolist()
    return np.array(out)


def tune(examples: list[Example], model_path: Path, config: TuneConfig = TuneConfig(), cancel=None,
         progress: bool = True, on_step=None) -> TuneResult:
    import torch

    torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    train, validation = split(examples, config.validation_share, config.seed)
    base, tokenizer = load_base(model_path)
    model = add_lora(base, config.r, config.alpha, config.dropout, config.top_layers)
    result = TuneResult(model, tokenizer, config, train, validation)
    replies = [tokenizer(e.reply, add_special_tokens=False).input_ids for e in train]  # both priors read them
    result.reply_length_quantiles = reply_length_quantiles(replies)
    result.sentence_lead = sentence_lead(tokenizer, replies)
    val_rows = encoded(tokenizer, validation, config)
    if val_rows:
        with model.disable_adapter():
            result.val_nll_before = float(token_nlls(model, tokenizer, val_rows).mean())
    _train(result, encoded(tokenizer, train, config), cancel, progress, on_step)
    if val_rows:
        result.val_nll_after = float(token_nlls(model, tokenizer, val_rows).mean())
    return result


def reply_length_quantiles(replies: list[list[int]]) -> list[int]:
    """The train replies' token lengths (``replies``: their token ids) at ``LENGTH_LEVELS`` evenly
    spaced quantiles (train data only): each tuned reply's length is drawn from them
    (``serving.reply_length``), so decoding keeps the real replies' spread of lengths instead of
    one stock short line."""
    lengths = [len(ids) for ids in replies]
    return [int(q) for q in np.percentile(lengths, np.linspace(0, 100, LENGTH_LEVELS))] if lengths else []


def sentence_lead(tokenizer, replies: list[list[int]]) -> float:
    """The tokens from a point inside a train reply (``replies``: their token ids) to its next sentence end (or the reply's
    end), averaged over every point: a sentence of L tokens gives L points that average (L - 1) / 2,
    so long sentences weigh as often as a point falls in them. A tuned reply ends at its first
    sentence end after the line's floor, so that floor is the drawn length less this lead
    (``serving.reply_length``): the reply then comes out about as long as its draw, where a floor
    at the draw itself overshot by the rest of the sentence it landed in."""
    ends: dict[int, bool] = {}
    points = total = 0
    for ids in replies:
        start = 0
        for position, token in enumerate(ids):
            if token not in ends:
                ends[token] = ends_sentence(tokenizer.decode([token]))
            if ends[token] or position == len(ids) - 1:
                span = position - start + 1
                points, total = points + span, total + span * (span - 1) / 2
                start = position + 1
    return round(total / points, 2) if points else 0.0


def _planned_steps(config: TuneConfig, n: int) -> int:
    return config.steps if config.steps is not None else max(1, math.ceil(config.epochs * n / config.batch))


class Stepper:
    """Optimiser steps of the training loss on chosen rows: ``tune``'s loop and ``bench.tune_speed``
    run the same code. Built for ``planned`` steps (the cosine schedule's length); ``step(chosen)``
    takes one step on the rows ``chosen`` and returns (LM loss, tokens in the batch)."""

    def __init__(self, result: TuneResult, rows, planned: int):
        import torch
        from transformers import get_cosine_schedule_with_warmup

        from assistant.training.querier_loss import QuerierContrast

        config, model, tokenizer = result.config, result.model, result.tokenizer
        self.result, self.rows = result, rows
        self.contrast = None
        if config.tagged and config.contrast_weight > 0:
            clusters = max((e.cluster for e in result.train), default=0) + 1
            self.contrast = QuerierContrast(model.config.hidden_size, clusters)
        self.params = [p for p in model.parameters() if p.requires_grad] + (
            list(self.contrast.parameters()) if self.contrast else [])
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=0.0)
        self.schedule = get_cosine_schedule_with_warmup(self.optimizer, min(config.warmup, planned // 10), planned)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def step(self, chosen: list[int]) -> tuple[float, int]:
        import torch

        config, model = self.result.config, self.result.model
        ids, labels, attention = collate([self.rows[i] for i in chosen], self.pad)
        # bf16 autocast runs the matrix products in bf16 (the LoRA weights and AdamW stay float32)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
            states, logits, targets, _ = reply_scores(model, ids, labels, attention)
            lm_loss = torch.nn.functional.cross_entropy(logits.float(), targets)
            loss = lm_loss
            if self.contrast is not None:
                pooled = self.contrast.pool(states.float(), labels != IGNORE)
                picked = [self.result.train[i] for i in chosen]
                loss = loss + config.contrast_weight * self.contrast(
                    pooled, [e.cluster for e in picked], [e.querier for e in picked])
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.schedule.step()
        return lm_loss.item(), int(attention.sum())


def _train(result: TuneResult, rows, cancel, progress: bool, on_step=None) -> None:
    from tqdm.auto import tqdm

    config, model = result.config, result.model
    planned = _planned_steps(config, len(rows))
    stepper = Stepper(result, rows, planned)
    batches = length_batches([len(ids) for ids, _ in rows], config.batch, np.random.default_rng(config.seed))
    started = time.perf_counter()
    bar = tqdm(total=planned, desc="teaching the local model", unit="step", disable=not progress)
    model.train()
    try:
        for step in range(planned):
            if cancel is not None and cancel.is_set():
                raise TrainingCancelled("Training was cancelled; the adapter in use (if any) is unchanged.")
            if config.minutes is not None and time.perf_counter() - started > config.minutes * 60:
                break
            lm_loss, tokens = stepper.step(next(batches))
            result.losses.append(lm_loss)
            result.steps = step + 1
            result.tokens += tokens
            result.seconds = time.perf_counter() - started
            bar.update(1)
            bar.set_postfix(loss=f"{lm_loss:.3f}", tok_s=f"{result.tokens_per_s:.0f}")
            if on_step is not None:
                on_step(_progress(result, planned, started))
    finally:
        bar.close()
    model.eval()


def _progress(result: TuneResult, planned: int, started: float) -> Progress:
    """The figures after a step; the time left is whichever ends first, the planned steps at this rate or the minutes cap."""
    per_step = result.seconds / result.steps
    left = per_step * (planned - result.steps)
    if result.config.minutes is not None:
        left = min(left, max(0.0, result.config.minutes * 60 - (time.perf_counter() - started)))
    return Progress(result.steps, planned, result.losses[-1], result.tokens_per_s, left)


def length_batches(lengths: list[int], size: int, rng, pool: int = 16):
    """Endless batches of row indices: each epoch shuffled, then rows of similar length batched
    together within runs of ``pool`` batches (less padding, so fewer wasted tokens),
    the batches themselves in random order."""
    n = len(lengths)
    while True:
        order = rng.permutation(n)
        batches = []
        for start in range(0, n, size * pool):
            run = sorted(order[start : start + size * pool], key=lambda i: lengths[i])
            batches += [run[i : i + size] for i in range(0, len(run), size) if len(run[i : i + size]) == size or n < size]
        batches = batches or [[]]  # no rows: empty batches, as before
        for index in rng.permutation(len(batches)):
            yield [int(i) for i in batches[index]]
