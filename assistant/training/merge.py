"""A tuned adapter merged into a copy of the base model, so that a tuned turn decodes at base speed.

Why: llama.cpp applies a LoRA adapter at run time as two extra small matrix products on each of
the 210 adapted matrices, a fifth of the decode time of a 135M model (docs/tuning.md). Merged
weights cost what the base weights cost.

Contract of ``merge_adapter(base_path, adapter_path, path, weight_type=Q8_0)``: one GGUF model
file, the base model's metadata and tensors, except that every weight the adapter adapts becomes
``W + (alpha / r) * B @ A`` (llama.cpp's scale at 1.0), computed in float32 from the base weight
dequantised, then quantised to ``weight_type``. Q8_0 by default: its step is about 1/17 of the
bundled Q4_1's, so the adapter's small changes survive (re-quantising to Q4_1 would round most
of them away). The adapter's ``confidant.adapter`` metadata is copied into the model under the
same key. Written next to ``path`` and renamed over it, so an interruption leaves no half file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assistant.errors import AdapterError
from assistant.training.export import METADATA_KEY, gguf_file, read_adapter


def merge_adapter(base_path: Path, adapter_path: Path, path: Path, weight_type=None) -> Path:
    import gguf

    weight_type = gguf.GGMLQuantizationType.Q8_0 if weight_type is None else weight_type
    base, adapter = gguf.GGUFReader(str(base_path)), gguf.GGUFReader(str(adapter_path))
    alpha, lora = read_adapter(adapter_path)
    adapted = {name.removesuffix(".lora_a") for name in lora if name.endswith(".lora_a")}
    missing = adapted - {t.name for t in base.tensors}
    if missing:
        raise AdapterError(f"the adapter adapts {len(missing)} weights this model does not have "
                           f"(e.g. {sorted(missing)[0]}): it was trained for another model")
    with gguf_file(path, base.get_field(gguf.Keys.General.ARCHITECTURE).contents()) as writer:
        _copy_fields(base, writer)
        metadata = adapter.get_field(METADATA_KEY)
        if metadata is not None:
            writer.add_string(METADATA_KEY, metadata.contents())
        for tensor in base.tensors:
            if tensor.name in adapted:
                merged = _merged(tensor, lora[f"{tensor.name}.lora_a"], lora[f"{tensor.name}.lora_b"], alpha)
                writer.add_tensor(tensor.name, gguf.quants.quantize(merged, weight_type), raw_dtype=weight_type)
            else:
                writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
    return Path(path)


def _merged(tensor, lora_a: np.ndarray, lora_b: np.ndarray, alpha: float) -> np.ndarray:
    """``W + (alpha / r) B A`` in float32; W as numpy lays it out, (out, in), like B @ A."""
    import gguf

    weight = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
    rank = lora_a.shape[0]
    return weight + (alpha / rank) * (lora_b @ lora_a)


def _copy_fields(reader, writer) -> None:
    """Every key-value field of ``reader`` into ``writer``, except those the writer sets itself."""
    import gguf

    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub_type)
