"""Memory: the vectors of every exchange and what is built on them.

Owns: encoding exchanges into query and dialogue vectors, the FAISS index (``index.py``), the
query clusters and the people's prototypes kept up to date as exchanges are added, and recall
(``recall.py``: a person's own past exchanges for a new message). ``Memory`` (``memory.py``)
composes those parts for the turn, imports and the people services, and hands them over
(``Memory.parts()``: the store, the stored vectors, the encoders, the index opened on first use
by ``lazy_index.py``) to whoever assembles the engine; nothing outside this package reaches
through a ``Memory`` for them.
Never touches: SQL (vectors, clusters and prototypes are read and written through
``assistant.store``), the chat models, routing, the UI.
"""
