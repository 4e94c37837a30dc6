"""The chat models: everything that turns messages into streamed reply text.

Owns: the ``ChatModel`` interface (``chat.py``) and its implementations: the local llama.cpp
model (``local.py``, every llama.cpp model created through ``llama_runtime.py``), the cloud
model on any OpenAI-compatible endpoint (``cloud.py``, ``cloud_reply.py``, ``breaker.py``) and
the answer kept from an earlier cloud turn (the semantic cache); the privacy wrapper that
redacts what goes to the cloud (``privacy.py``, ``escalation.py``) and the wrapper that falls
back to the local model when the cloud fails.
Never touches: the store's tables, memory, who is asking. It is told messages and returns text.
"""
