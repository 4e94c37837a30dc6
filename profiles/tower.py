"""The dual-tower encoder of one dialogue: WHAT is asked and WHO is asking.

Contract:

* A ``Dialogue`` is the text of one exchange: the ``query``, up to a few earlier turns of
  ``context`` (oldest first) and the ``reply`` ("" while it is not known yet). It never
  carries speaker names or ids: only what was said.
* The *general tower* is the frozen sentence embedder (all-MiniLM-L6-v2 by default), always
  loaded through :func:`load_general_tower` with the model directory the app is configured
  with (``Settings.embedder_path``). Its embedding is the mean of its last layer's token
  states (exactly its own pooling), on dialogue text truncated to ``max_len`` tokens.
* The *questioner tower* reads the token states of the same frozen transformer at layer
  ``tap_layer`` and runs a small trainable network over them (``QuestionerHead``: projection,
  optional light transformer blocks (0 by default: on 2 CPU cores one block cost 30x the
  training time and did not help on validation), multi-head attention pooling). Because the transformer below
  is shared and frozen, one forward pass gives both towers (``encode_both``), and training
  can cache that pass once (see ``profiles.contrastive``).
* ``encode_dual`` and ``encode_both`` return
  L2-normalised float32 numpy arrays, one row per input, computed in batches.
* ``save(dir)`` writes ``head.pt`` and ``meta.json`` into a temporary sibling directory and
  renames it into place, so a crash never leaves a half-written encoder; ``load(dir,
  model_path)`` reads it back (the general tower from ``model_path``, else ``meta``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from profiles.dialogue import SEP, Dialogue, dialogue_text  # noqa: F401 (the tower's input type)

def segment_ids(input_ids: np.ndarray, sep_id: int) -> np.ndarray:
    """Segment index of each token: the number of [SEP]s before it ([CLS] is in the query)."""
    is_sep = (np.asarray(input_ids) == sep_id).astype(np.int64)
    return np.cumsum(is_sep) - is_sep


BATCH_FROM = 32  # texts in one call from which the transformer runs on all threads


@lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX): elsewhere bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def wants_bf16(precision: str) -> bool:
    """A precision setting (``auto`` / ``float32`` / ``bf16``) read on this CPU: auto is bf16 only
    where the CPU computes it natively."""
    return precision == "bf16" or (precision == "auto" and native_bf16())


@contextmanager
def batch_precision(n: int, bf16: bool = False):
    """How to run the frozen transformer for ``n`` texts (docs/performance.md has the figures).

    A batch (an import, training, a re-encoding): all threads, and bf16 autocast if ``bf16``:
    2x faster on CPUs with native bf16, with vectors at cosine 0.99998 to float32 and speaker
    detection naming the same person for 99.8% of dialogues (``python -m bench.precision``).
    A turn's one or two texts: float32 on ONE thread. A short text is a hundred tiny operations,
    each ending at a barrier of the intra-op threads; when another program holds a core, every
    barrier waits for it (p95 660 ms instead of 33 ms under load here), while one thread has no
    one to wait for."""
    if n >= BATCH_FROM:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load_general_tower(model_path: str | os.PathLike):
    """The frozen general tower (a sentence-transformers model directory) on the CPU."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), device="cpu")
    model.eval()
    for p in model.parameters():
        p.requires_grad = False
    return model


def _normalise(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _texts(items: Sequence[Dialogue | str]) -> list[str]:
    return [it if isinstance(it, str) else dialogue_text(it) for it in items]


def pad_states(states: Sequence[torch.Tensor], keep: Sequence[np.ndarray] | None = None):
    """Stack variable-length (len, dim) token states into (B, T, dim) and a 0/1 mask;
    ``keep`` (optional, one bool array per row) hides tokens, e.g. for augmentation."""
    T = max(s.shape[0] for s in states)
    h = torch.zeros(len(states), T, states[0].shape[1])
    mask = torch.zeros(len(states), T)
    for i, s in enumerate(states):
        h[i, : s.shape[0]] = s.float()
        mask[i, : s.shape[0]] = 1.0 if keep is None else torch.from_numpy(keep[i].astype(np.float32))
    return h, mask


class QuestionerHead(nn.Module):
    """Small network over frozen token states -> questioner embedding (unnormalised)."""

    def __init__(self, in_dim: int = 384, dim: int = 256, n_blocks: int = 0, pool_heads: int = 4,
                 out_dim: int = 256, dropout: float = 0.1):
        super().__init__()
        self.config = dict(in_dim=in_dim, dim=dim, n_blocks=n_blocks, pool_heads=pool_heads,
                           out_dim=out_dim, dropout=dropout)
        self.proj = nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, dim), nn.GELU())
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, nhead=4, dim_feedforward=2 * dim, dropout=dropout,
                                       batch_first=True, norm_first=True) for _ in range(n_blocks))
        self.score = nn.Linear(dim, pool_heads)  # which tokens say who is speaking
        self.out = nn.Sequential(nn.LayerNorm(dim * pool_heads), nn.Dropout(dropout),
                                 nn.Linear(dim * pool_heads, out_dim))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.proj(hidden)
        for block in self.blocks:
            x = block(x, src_key_padding_mask=mask == 0)
        scores = self.score(x).masked_fill((mask == 0)[..., None], float("-inf"))
        weights = torch.softmax(scores, dim=1)                      # (B, T, heads)
        pooled = torch.einsum("bth,btd->bhd", weights, x).flatten(1)  # (B, heads*dim)
        return self.out(pooled)


class QuestionerEncoder(nn.Module):
    """Frozen general tower + trainable questioner head over its layer-``tap_layer`` states."""

    def __init__(self, model_path: str | os.PathLike, *, tap_layer: int = 4, max_len: int = 128,
                 dual_weight: float = 0.9, head: QuestionerHead | None = None,
                 meta: dict | None = None, general=None):
        super().__init__()
        self.model_path = str(model_path)
        self.general = general if general is not None else load_general_tower(model_path)
        self.bert = self.general[0].auto_model      # the shared, frozen transformer
        self.tokenizer = self.general.tokenizer
        self.tap_layer = int(tap_layer)
        self.max_len = int(max_len)
        self.dual_weight = float(dual_weight)       # weight of the general part in encode_dual
        self.head = head if head is not None else QuestionerHead(in_dim=self.bert.config.hidden_size)
        self.meta = dict(meta or {})

    @torch.inference_mode()
    def frozen_pass(self, items: Sequence[Dialogue | str], batch_size: int = 64, progress: bool = False,
                    bf16: bool = False):
        """One pass of the frozen transformer: (general embeddings, token states at
        ``tap_layer`` as float16 tensors, token ids), both towers' inputs at once; run as
        ``batch_precision(len(items), bf16)`` says (the head after it stays float32)."""
        with batch_precision(len(items), bf16):
            return self._frozen_pass(items, batch_size, progress)

    def _frozen_pass(self, items, batch_size: int, progress: bool):
        from tqdm.auto import tqdm

        texts = _texts(items)
        order = np.argsort([len(t) for t in texts])  # similar lengths per batch: less padding
        general = np.zeros((len(texts), self.bert.config.hidden_size), dtype=np.float32)
        states: list = [None] * len(texts)
        ids: list = [None] * len(texts)
        for i in tqdm(range(0, len(texts), batch_size), desc="frozen pass", disable=not progress):
            idx = order[i: i + batch_size]
            tok = self.tokenizer([texts[j] for j in idx], padding=True, truncation=True,
                                 max_length=self.max_len, return_tensors="pt")
            out = self.bert(**tok, output_hidden_states=True)
            m = tok["attention_mask"]
            last = out.hidden_states[-1]
            general[idx] = ((last * m[..., None]).sum(1) / m.sum(1, keepdim=True)).numpy()
            tap = out.hidden_states[self.tap_layer]
            for row, j in enumerate(idx):
                n = int(m[row].sum())
                states[j] = tap[row, :n].to(torch.float16).clone()
                ids[j] = tok["input_ids"][row, :n].numpy().copy()
        return _normalise(general), states, ids

    @torch.no_grad()
    def embed_states(self, states: Sequence[torch.Tensor], batch_size: int = 256) -> np.ndarray:
        """Questioner embeddings from cached token states (normalised)."""
        was_training = self.head.training
        self.head.eval()
        order = np.argsort([s.shape[0] for s in states])
        out = np.zeros((len(states), self.head.config["out_dim"]), dtype=np.float32)
        for i in range(0, len(states), batch_size):
            idx = order[i: i + batch_size]
            out[idx] = self.head(*pad_states([states[j] for j in idx])).numpy()
        self.head.train(was_training)
        return _normalise(out)

    def combine(self, general: np.ndarray, questioner: np.ndarray, weight: float | None = None) -> np.ndarray:
        """Weighted concatenation: cos(dual) = (1-w)*cos(questioner) + w*cos(general)."""
        w = self.dual_weight if weight is None else float(weight)
        return _normalise(np.hstack([np.sqrt(1 - w) * questioner, np.sqrt(w) * general]))

    def encode_both(self, items, batch_size: int = 64, bf16: bool = False) -> tuple[np.ndarray, np.ndarray]:
        general, states, _ = self.frozen_pass(items, batch_size, bf16=bf16)
        return general, self.embed_states(states)

    def encode_dual(self, items: Sequence[Dialogue | str], batch_size: int = 64, bf16: bool = False) -> np.ndarray:
        return self.combine(*self.encode_both(items, batch_size, bf16))

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            torch.save(self.head.state_dict(), tmp / "head.pt")
            meta = {**self.meta, "base_model": self.model_path, "tap_layer": self.tap_layer,
                    "max_len": self.max_len, "dual_weight": self.dual_weight,
                    "head": self.head.config,
                    "dims": {"general": int(self.bert.config.hidden_size),
                             "questioner": int(self.head.config["out_dim"])}}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
            old = target.with_name(f".{target.name}.old")
            if target.exists():  # swap: old aside, new in, old dropped
                shutil.rmtree(old, ignore_errors=True)
                target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike, model_path: str | os.PathLike | None = None,
             general=None) -> "QuestionerEncoder":
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        head = QuestionerHead(**meta["head"])
        head.load_state_dict(torch.load(directory / "head.pt", map_location="cpu", weights_only=True))
        head.eval()
        return cls(model_path or meta["base_model"], tap_layer=meta["tap_layer"],
                   max_len=meta["max_len"], dual_weight=meta["dual_weight"], head=head,
                   meta=meta, general=general)
