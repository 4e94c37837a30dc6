"""The local model in torch, ready to be taught: the bundled GGUF with a peft LoRA on it.

Contract:
- ``load_base(model_path)`` loads the GGUF with transformers (dequantised to float32) and its
  tokenizer, from the file itself: nothing comes from a hub. ``ModelError`` if it cannot.
- ``add_lora(model, r, alpha, dropout, top_layers)`` wraps it with a LoRA on q, k, v, o, gate, up,
  down (the paper's targets), in every layer or the top ``top_layers``; only the LoRA weights train.
- ``reply_scores(model, ids, labels, attention)`` runs the model once and returns the last
  layer's states at every position with the logits and targets of the reply's tokens only: the
  vocabulary projection is a fifth of a step, and only the reply's tokens are scored.
- ``encode(tokenizer, prompt, reply, max_tokens)`` tokenizes prompt + reply as one sequence
  and returns (input ids, labels) with the prompt's labels masked (-100): loss on the reply's
  tokens only. When too long, the prompt is cut from the left (the oldest context goes first)
  and the reply from the right.
"""

from __future__ import annotations

from pathlib import Path

from assistant.errors import ModelError

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
IGNORE = -100
MIN_PROMPT_TOKENS = 8


def load_base(model_path: Path):
    """(model, tokenizer) of the GGUF at ``model_path``, in float32 on the CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    model_path = Path(model_path)
    logging.disable_progress_bar()  # the dequantising bar would interleave with training's
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path.parent, gguf_file=model_path.name)
        model = AutoModelForCausalLM.from_pretrained(model_path.parent, gguf_file=model_path.name, dtype=torch.float32)
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise ModelError(f"could not load {model_path} for training: {error}") from None
    finally:
        logging.enable_progress_bar()
    return model, tokenizer


def add_lora(model, r: int = 16, alpha: float = 8.0, dropout: float = 0.0, top_layers: int | None = None):
    """``top_layers``: adapt only the top N layers (None: all). Below them no gradient flows, so
    their backward pass is skipped."""
    from peft import LoraConfig, get_peft_model

    n = model.config.num_hidden_layers
    layers = None if top_layers is None or top_layers >= n else list(range(n - top_layers, n))
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=LORA_TARGETS,
                        layers_to_transform=layers, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def reply_scores(model, ids, labels, attention):
    """(states, logits, targets, scored): states (batch, length, hidden); ``scored`` marks the
    positions whose next token is a reply token, and ``logits``/``targets`` are theirs, in order."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    states = inner.model(input_ids=ids, attention_mask=attention).last_hidden_state
    targets = labels[:, 1:]
    scored = targets != IGNORE
    return states, inner.lm_head(states[:, :-1][scored]), targets[scored], scored


def encode(tokenizer, prompt: str, reply: str, max_tokens: int) -> tuple[list[int], list[int]]:
    """(input ids, labels) for one dialogue; labels are -100 over the prompt."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    reply_ids = tokenizer(reply, add_special_tokens=False).input_ids
    reply_ids = reply_ids[: max(1, max_tokens - MIN_PROMPT_TOKENS)]
    prompt_ids = prompt_ids[-(max_tokens - len(reply_ids)):]
    return prompt_ids + reply_ids, [IGNORE] * len(prompt_ids) + reply_ids
