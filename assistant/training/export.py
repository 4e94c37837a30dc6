"""A trained peft LoRA written as a llama.cpp GGUF adapter, atomically.

Contract of ``write_adapter(model, path, metadata)``: one GGUF file in llama.cpp's LoRA adapter
format (what ``convert_lora_to_gguf.py`` in llama.cpp writes): ``general.type = adapter``,
``adapter.type = lora``, ``adapter.lora.alpha``, and for every adapted weight the tensors
``<base tensor name>.lora_a`` (peft's A, ``r × in``) and ``.lora_b`` (peft's B, ``out × r``),
named as llama.cpp names the base tensors (``blk.N.attn_q.weight``, …). The q and k B matrices
get the same row permutation llama.cpp's converter gives the base q and k weights (rotary
layout), since transformers undid it when it loaded the GGUF. ``metadata`` (JSON) is stored in
the file under ``confidant.adapter``. The file is written next to ``path`` and renamed over it,
so an interruption leaves either the old file or the new one, never half of one.
``rewrite_metadata(source, path, metadata)`` copies an adapter file with other metadata, the same way;
``read_adapter(path)`` gives an adapter file's alpha and tensors.
"""

from __future__ import annotations

import json
import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

METADATA_KEY = "confidant.adapter"
_LORA_WEIGHT = re.compile(r"(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])\.(?:\w+\.)?weight$")


def rotary_permute(rows: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute`` of q/k output rows (its converter, for the base weights)."""
    return rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def lora_tensors(model) -> dict[str, np.ndarray]:
    """``{llama.cpp tensor name: float32 array}`` for every LoRA A and B in the peft ``model``."""
    import gguf

    config = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    heads = {"attn_q": config.num_attention_heads, "attn_k": config.num_key_value_heads}
    tensors = {}
    for name, tensor in model.state_dict().items():
        match = _LORA_WEIGHT.match(name)
        if not match:
            continue
        base = names.get_name(match["module"])
        if base is None:
            raise ValueError(f"no llama.cpp tensor for {match['module']}")
        array = tensor.detach().to("cpu").float().numpy()
        kind = base.rsplit(".", 1)[-1]
        if match["part"] == "B" and kind in heads:
            array = rotary_permute(array, heads[kind])
        tensors[f"{base}.weight.lora_{match['part'].lower()}"] = np.ascontiguousarray(array)
    return tensors


def write_adapter(model, path: Path, metadata: dict) -> Path:
    return _write(Path(path), float(model.peft_config["default"].lora_alpha), metadata, lora_tensors(model))


def rewrite_metadata(source: Path, path: Path, metadata: dict) -> Path:
    """The adapter at ``source`` written to ``path`` (atomically) with ``metadata`` in place of its own
    (an adapter restored from an archive gets this device's ids)."""
    alpha, tensors = read_adapter(source)
    return _write(Path(path), alpha, metadata, tensors)


def read_adapter(path: Path) -> tuple[float, dict[str, np.ndarray]]:
    """(alpha, ``{tensor name: float32 array}``) of the LoRA adapter file at ``path``."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    alpha = float(reader.get_field(gguf.Keys.Adapter.LORA_ALPHA).contents())
    return alpha, {t.name: np.array(t.data, dtype=np.float32) for t in reader.tensors}


def _write(path: Path, alpha: float, metadata: dict, tensors: dict[str, np.ndarray]) -> Path:
    import gguf

    with gguf_file(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA]) as writer:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_string(METADATA_KEY, json.dumps(metadata))
        for name, array in tensors.items():
            writer.add_tensor(name, array)
    return path


@contextmanager
def gguf_file(path: Path, architecture: str):
    """A ``GGUFWriter`` to fill; on leaving, the file is written next to ``path``, synced and
    renamed over it. An error inside leaves ``path`` as it was and no partial file."""
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")  # one per writer
    try:
        writer = gguf.GGUFWriter(str(partial), architecture)
        yield writer
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def read_metadata(path: Path) -> dict:
    """The ``confidant.adapter`` metadata of an adapter file (``ValueError`` if it has none)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    field = reader.get_field(METADATA_KEY)
    if field is None:
        raise ValueError(f"{path} is not a Confidant adapter")
    return json.loads(field.contents())
