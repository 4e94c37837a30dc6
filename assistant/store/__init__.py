"""The store: the SQLite database and ALL of the project's SQL.

Owns: the connection and its transactions (``db.py``), the numbered schema migrations
(``migrations.py``), people, conversations and exchanges (``store.py``), the vectors, clusters
and prototypes tables (``vectors.py``), one chat turn's row from begin to completion
(``turn_log.py``, with the route's columns in ``route_log.py``), the declaration of every table that holds one person's data
(``person_tables.py``), the queries of the people services and their charts (``people.py``),
read-only checks of a database file (``inspect.py``), the benchmarks' bulk writes (``bulk.py``),
which exchanges the local model may learn from (``training_data.py``)
and the validation of people's names (``names.py``).
Never touches: models, FAISS, what the vectors mean, the UI. No module outside this package
writes SQL (``tests/test_layout.py`` checks it).
"""
