"""Training: the models this project learns from its own data.

Owns: training the router's difficulty model on question sets (``router.py``) and training the
questioner tower on the stored exchanges, then refreshing the vectors and prototypes it made
(``encoder.py``; the tower and its loss are ``profiles/``); teaching the local model, LoRA
fine-tuning on the household's own dialogues:

- ``dialogues``: which stored exchanges may be learned from, and the ONE speaker-tagged prompt
  format shared by training and inference.
- ``model``: the bundled GGUF loaded in torch with a peft LoRA on it.
- ``querier_loss``: the querier-aware contrastive term (per-cluster heads, prototype bank).
- ``trainer``: the seeded, time-boxed, cancellable training loop.
- ``export``: the LoRA written as a llama.cpp GGUF adapter.
- ``adapter``: the adapter in the data dir (metadata, base-model check, staleness).
- ``serving``: applying an adapter to a loaded llama.cpp model per request.
- ``teach``: store → training → adapter, what ``confidant tune`` runs (the live turn's tuned
  model is ``assistant.models.tuned``).

Never touches: SQL (it reads and writes through ``assistant.store``), the UI.
"""
