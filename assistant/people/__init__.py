"""People: looking after what the assistant knows about each person.

Owns: who is speaking in a turn (``identification.py``, with the questioner tower's maths in
``profiles/``), a person's figures, search, editing and merging (``curation.py``), forgetting
(``forgetting.py``), the portable export and import of one person (``portable.py``,
``portable_format.py``), the household archive (``archive.py``), and importing conversations
from other apps (``importers/``). ``PeopleService`` (``service.py``) is the face ``app/`` uses.
Never touches: SQL (every read and write goes through ``assistant.store``), the chat models.
"""
