"""Routing: which chat model answers a turn, and why.

Owns: the router (``router.py``: mode, consent, the semantic cache and the calibrated
difficulty score decide local or cloud) and the difficulty model it scores with
(``difficulty.py``). The decisions are written by the turn log (``assistant.store.turn_log``).
Never touches: SQL, generation itself (it names the model; ``assistant.pipeline`` streams it),
the UI.
"""
