"""The engine's layout rules (docs/architecture.md), checked by walking the sources' syntax trees.

- ``profiles/`` (who is asking: plain arrays in, arrays out) imports nothing from ``assistant/``;
- ``assistant/`` (the engine) imports nothing from ``app/`` (the faces);
- SQL is written only under ``assistant/store/``: no string elsewhere reads like a statement;
- ``app/`` reaches the engine only through its facade and constructs no engine part;
- nothing outside ``assistant/memory/`` reaches through a ``Memory`` for its parts (the store,
  vectors, encoders, index): they are passed in where the engine is assembled;
- every package is listed in pyproject.toml.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "assistant" / "store"
SQL = re.compile(r"\b(SELECT\s[\s\S]*\bFROM\b|INSERT\s+(OR\s+\w+\s+)?INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b"
                 r"|CREATE\s+(TABLE|INDEX|TRIGGER|VIEW)\b|DROP\s+TABLE\b|PRAGMA\s+\w+|VACUUM\b)")


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports inside functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sql_strings(path: Path) -> list[tuple[int, str]]:
    return sql_in(path.read_text(), str(path))


def sql_in(source: str, name: str = "<source>") -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append((node.lineno, node.value[:60]))
    return found


def test_profiles_import_nothing_from_the_engine_or_the_app():
    bad = {str(p.relative_to(ROOT)): sorted(m for m in imported(p) if m.split(".")[0] in ("assistant", "app"))
           for p in sources("profiles")}
    assert {p: m for p, m in bad.items() if m} == {}


def test_the_engine_imports_nothing_from_the_app():
    bad = {str(p.relative_to(ROOT)): sorted(m for m in imported(p) if m.split(".")[0] == "app")
           for p in sources("assistant")}
    assert {p: m for p, m in bad.items() if m} == {}


def test_sql_is_written_only_in_the_store():
    bad = {str(p.relative_to(ROOT)): sql_strings(p)
           for folder in ("app", "assistant", "profiles", "bench") for p in sources(folder) if STORE not in p.parents}
    assert {p: s for p, s in bad.items() if s} == {}


def test_the_sql_check_sees_sql():
    """The rule above would pass vacuously if the pattern missed the store's own statements."""
    assert sum(len(sql_strings(p)) for p in STORE.rglob("*.py")) > 40
    assert len(sql_in("db.execute(f'UPDATE exchanges SET reply = ? WHERE id IN ({marks})')")) == 1
    assert sql_in("print('Select a person from the list')") == []


# What app/ may import from the engine: the facade (the assistant and its people service), the
# vocabulary every layer shares (errors, settings, input limits, atomic files, the stored records'
# types), and the engine's own tools that a command runs as they are (diagnosis, evaluations,
# router training, the cloud check, the import parsers, loading the PII detector ahead of time).
APP_MAY_IMPORT = {
    "assistant", "assistant.pipeline", "assistant.people.service",
    "assistant.errors", "assistant.settings", "assistant.inputs", "assistant.files", "assistant.store.store",
    "assistant.doctor", "assistant.evaluation", "assistant.training.router", "assistant.models.cloud",
    "assistant.people.importers", "assistant.models.privacy", "assistant.turn_options",
    "assistant.conversations",
}


def test_the_app_reaches_the_engine_only_through_its_facade():
    bad = {str(p.relative_to(ROOT)): sorted(m for m in imported(p) if m.split(".")[0] == "assistant"
                                            and m not in APP_MAY_IMPORT)
           for p in sources("app")}
    assert {p: m for p, m in bad.items() if m} == {}


def test_the_app_constructs_no_engine_part():
    """Memory, stores, models and the router are made by the engine, never by a tab or a command."""
    parts = {"Memory", "Store", "VectorStore", "TurnLog", "Router", "Escalation", "LocalModel", "CloudModel"}
    made = {str(p.relative_to(ROOT)): sorted({n.func.id for n in ast.walk(ast.parse(p.read_text()))
                                              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                                              and n.func.id in parts})
            for p in sources("app")}
    assert {p: m for p, m in made.items() if m} == {}


# A Memory's parts: callers are handed the ones they use (``Memory.parts()``), never reach for them.
MEMORY_PARTS = {"store", "vectors", "encoders", "index"}
MEMORY = ROOT / "assistant" / "memory"


def reached_through_memory(source: str, name: str = "<source>") -> list[tuple[int, str]]:
    """``memory.store``, ``self.memory.index``, ``x._memory.encoders``...: a part read off an
    expression named ``memory`` (a module path such as ``assistant.memory.index`` is not one)."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Attribute) and node.attr in MEMORY_PARTS and _names_a_memory(node.value):
            found.append((node.lineno, ast.unparse(node)))
    return found


def _names_a_memory(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("memory", "_memory")
    if not (isinstance(node, ast.Attribute) and node.attr in ("memory", "_memory")):
        return False
    root = node.value
    while isinstance(root, ast.Attribute):
        root = root.value
    return not (isinstance(root, ast.Name) and root.id == "assistant")


def test_nothing_outside_memory_reaches_through_it():
    bad = {str(p.relative_to(ROOT)): reached_through_memory(p.read_text(), str(p))
           for folder in ("app", "assistant", "profiles") for p in sources(folder) if MEMORY not in p.parents}
    assert {p: r for p, r in bad.items() if r} == {}


def test_the_memory_check_sees_reaching_through():
    """The rule above would pass vacuously if it missed the ways a part is reached for."""
    assert len(reached_through_memory("memory.store.profile(1)\nself.memory.index.search(q, 1)")) == 2
    assert len(reached_through_memory("self._memory.encoders.meta\nbench.memory.vectors.get([1])")) == 2
    assert reached_through_memory("store.profile(1)\nparts.index.search(q, 1)\nassistant.memory.index.MemoryIndex") == []
    assert len(reached_through_memory((MEMORY / "index.py").read_text())) > 0  # the rule's own folder does


def test_every_package_is_listed_in_pyproject():
    """A subpackage missing from pyproject's list would be left out of an installed Confidant."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for folder in ("app", "assistant", "profiles")
             for init in (ROOT / folder).rglob("__init__.py")}
    assert found == listed
