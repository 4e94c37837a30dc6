"""The store: the SQLite database and ALL of the project's SQL.

Owns: the connection and its transactions (``db.py``), the numbered schema migrations
(``migrations.py``), people, conversations and exchanges (``store.py``), the vectors, clusters
and prototypes tables (``vectors.py``), one turn's row from begin to completion (``turn_log.py``),
the declaration of every table that holds one person's data (``person_tables.py``) and the SQL
of the people services: forgetting, merging, editing, export and figures (``people.py``), and
name validation (``names.py``).
Never touches: models, vectors' meaning, FAISS, the UI. No module outside this package writes
SQL (``tests/test_layout.py`` checks it).
"""
