"""Training: the models this project learns from its own data.

Owns: training the router's difficulty model on question sets (``router.py``) and training the
questioner tower on the stored exchanges, then refreshing the vectors and prototypes it made
(``encoder.py``; the tower and its loss are ``profiles/``).
Never touches: SQL (it reads and writes through ``assistant.store``), the UI.
"""
