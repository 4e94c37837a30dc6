"""The tuned adapter in the data dir: saved with what it learned from, checked, and forgotten.

Contract:
- ``adapter_path(data_dir)`` is where the one adapter lives (``tuned-adapter.gguf``).
- ``require_enough(examples)``: ``TrainingError`` saying what is needed unless there are at
  least ``MIN_PEOPLE`` people and ``MIN_EXCHANGES`` learnable exchanges.
- ``save(result, data_dir, model_path)`` writes the adapter atomically with its metadata (when,
  how many exchanges of whom, the exchange and profile ids, the base model's SHA-256, the
  settings, the held-out loss before and after, the length prior ``reply_length_quantiles``) inside
  the GGUF (``export``).
- ``load_info(data_dir, model_path)``: the metadata of the adapter, ``None`` when there is none;
  an adapter made for another base model is an ``AdapterError`` that says so.
- ``length_prior(info)``: the metadata's reply-length quantiles and sentence lead, the arguments
  ``serving.reply_length`` takes; an adapter made before they were kept gives its one fixed
  ``min_reply_tokens`` and no lead.
- ``check_file(path, model_path)`` is that check for any adapter file; ``restore(source, data_dir,
  model_path, profile_ids, exchange_ids)`` installs one from an archive with this device's ids.
- ``merged_model(data_dir, model_path)``: the adapter merged into a copy of the base model
  (``merged_path``, ``tuned-model.gguf``; ``merge``), what a tuned turn decodes with at the base
  model's speed. Built when missing or made from another adapter (their metadata differ). It
  holds what the adapter holds, so every write of a new adapter and every deletion removes it.
- ``forget_trained_on(data_dir, exchange_ids=(), profile_ids=())``: an adapter trained on any of
  these exchanges or people holds their words, so it is deleted with its merged model; returns
  whether it was. The base model answers until ``confidant tune`` runs again.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from assistant.errors import AdapterError, TrainingError
from assistant.training.export import read_metadata, rewrite_metadata, write_adapter

ADAPTER_FILE = "tuned-adapter.gguf"
MERGED_FILE = "tuned-model.gguf"
MIN_PEOPLE = 2
MIN_EXCHANGES = 300
STALE_MESSAGE = ("The tuned local model had learned from what was just removed, so it was deleted too; "
                 "the base model answers until you teach it again (confidant tune).")


def adapter_path(data_dir: Path) -> Path:
    return Path(data_dir) / ADAPTER_FILE


def merged_path(data_dir: Path) -> Path:
    return Path(data_dir) / MERGED_FILE


def require_enough(examples) -> None:
    people = {e.querier for e in examples}
    if len(people) < MIN_PEOPLE or len(examples) < MIN_EXCHANGES:
        raise TrainingError(
            f"Teaching the local model needs at least {MIN_EXCHANGES} exchanges from at least {MIN_PEOPLE} people "
            f"(replies you imported with --me, corrected in the Memory tab, or got from the cloud); "
            f"there are {len(examples)} from {len(people)}. Import more history first (confidant import)."
        )


def base_model_hash(model_path: Path) -> str:
    stat = Path(model_path).stat()
    return _sha256(str(Path(model_path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime key the cache
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metadata(result, model_path: Path) -> dict:
    people: dict[str, int] = {}
    for example in result.train:
        people[example.querier] = people.get(example.querier, 0) + 1
    used = result.train + result.validation
    return {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "base_model": {"name": Path(model_path).name, "sha256": base_model_hash(model_path)},
        "settings": result.config.settings(),
        "exchanges": len(result.train),
        "validation_exchanges": len(result.validation),
        "people": people,
        "exchange_ids": sorted({e.exchange_id for e in used if e.exchange_id is not None}),
        "profile_ids": sorted({e.profile_id for e in used if e.profile_id is not None}),
        "val_nll_before": result.val_nll_before,
        "val_nll_after": result.val_nll_after,
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "tokens_per_s": round(result.tokens_per_s, 1),
        "reply_length_quantiles": result.reply_length_quantiles,
        "sentence_lead": result.sentence_lead,
    }


def length_prior(info: dict) -> tuple[list[int], float]:
    return info.get("reply_length_quantiles") or [info.get("min_reply_tokens", 0)], info.get("sentence_lead", 0.0)


def save(result, data_dir: Path, model_path: Path) -> Path:
    path = write_adapter(result.model, adapter_path(data_dir), metadata(result, model_path))
    merged_path(data_dir).unlink(missing_ok=True)  # the old adapter's words
    return path


def merged_model(data_dir: Path, model_path: Path) -> Path:
    """The data dir's adapter merged into the base model, (re)built unless it is this adapter's."""
    from assistant.training.merge import merge_adapter

    path, source = merged_path(data_dir), adapter_path(data_dir)
    try:
        if read_metadata(path) == read_metadata(source):
            return path
    except (ValueError, OSError):
        pass  # missing or unreadable: build it
    return merge_adapter(model_path, source, path)


def load_info(data_dir: Path, model_path: Path) -> dict | None:
    path = adapter_path(data_dir)
    return check_file(path, model_path) if path.is_file() else None


def check_file(path: Path, model_path: Path) -> dict:
    """The metadata of the adapter file at ``path``; ``AdapterError`` if it cannot be read or was
    made for another base model than ``model_path``."""
    try:
        info = read_metadata(path)
    except (ValueError, OSError) as error:
        raise AdapterError(f"the tuned adapter {path} cannot be read ({error}); delete it or retrain (confidant tune)") from None
    if info["base_model"]["sha256"] != base_model_hash(model_path):
        raise AdapterError(
            f"the tuned adapter {path} was trained for the base model {info['base_model']['name']} "
            f"(sha256 {info['base_model']['sha256'][:12]}…), not for {Path(model_path).name}; "
            "retrain it for this model (confidant tune) or switch back to that model")
    return info


def restore(source: Path, data_dir: Path, model_path: Path, profile_ids, exchange_ids) -> dict:
    """Install the adapter file at ``source`` (from an archive) as this data dir's adapter, checked
    (``check_file``) and with its ids replaced by this device's: the people it came with and all
    their exchanges, since the other device's ids mean nothing here (so forgetting any of them
    removes it). Returns its metadata."""
    info = check_file(source, model_path)
    info = {**info, "profile_ids": sorted(set(profile_ids)), "exchange_ids": sorted(set(exchange_ids))}
    rewrite_metadata(source, adapter_path(data_dir), info)
    merged_path(data_dir).unlink(missing_ok=True)
    return info


def forget_trained_on(data_dir: Path, exchange_ids=(), profile_ids=()) -> bool:
    path, merged = adapter_path(data_dir), merged_path(data_dir)
    if not path.is_file():
        merged.unlink(missing_ok=True)  # left without its adapter, it still holds the adapter's words
        return False
    try:
        info = read_metadata(path)
        hit = bool(set(info["exchange_ids"]) & set(exchange_ids) or set(info["profile_ids"]) & set(profile_ids))
    except (ValueError, OSError, KeyError):
        hit = True  # an adapter whose origin cannot be read may hold anyone's words
    if hit:
        path.unlink(missing_ok=True)
        merged.unlink(missing_ok=True)
    return hit
