"""The whole assistant as one archive: every person (the profile export format) plus the trained
questioner encoder, in one zip file.

Layout (``docs/export-format.md``)::

    manifest.json        {"format": "confidant.archive", "version": 1, "exported_at", "people": [file names]}
    people/0001.json     one "confidant.profile" v1 export per person
    encoder/...          the questioner encoder checkpoint (absent before the first training)
    adapter/tuned-adapter.gguf   the tuned local model's adapter with its metadata (absent before ``confidant tune``)

Contract:
- ``write_archive(store, path)`` writes atomically, readable by its owner only.
- ``import_archive(store, encoders, memory, path)`` checks the manifest and EVERY person's file before anything
  is written (an ``InputError`` names the file and the JSON path of the first problem), then
  imports each person like ``portable.import_profile`` (create, or merge into the person of that
  name skipping what is already there). Conflicts are reported, never resolved silently: a person
  merged into keeps this device's cloud consent; an encoder already trained here is kept and the
  archive's is left out (retrain to learn from the merged memories).
- The tuned adapter travels the same way: written when there is one; on import it is checked
  before anything is written, and restored only if this device has none and it was made for this
  device's base model (else it is left out and the report says why). The restored adapter names
  this device's ids of the archive's people and all their exchanges (``training.adapter.restore``),
  so forgetting any of them removes it. An adapter is only ever a file here: nothing of it goes to the cloud.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import AdapterError, InputError
from assistant.files import written_atomically
from assistant.people.portable import ImportReport, export_profile, import_profile, parse_export
from assistant.store.store import Store, now
from assistant.training import adapter as tuned

ADAPTER_MEMBER = f"adapter/{tuned.ADAPTER_FILE}"

FORMAT = "confidant.archive"
VERSION = 1
MAX_MEMBER_BYTES = 512 * 1024 * 1024  # refuse zip bombs: no member may inflate beyond this


@dataclass
class ArchiveReport:
    people: list[ImportReport] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    encoder: str = "none in the archive"
    adapter: str = "none in the archive"

    def summary(self) -> str:
        lines = [f"{len(self.people)} people: " + "; ".join(r.summary() for r in self.people)]
        lines.append(f"encoder: {self.encoder}")
        lines.append(f"tuned adapter: {self.adapter}")
        lines += [f"conflict: {c}" for c in self.conflicts]
        return "\n".join(lines)


def write_archive(store: Store, encoder_dir: Path, path: Path | str, adapter_file: Path | None = None) -> dict:
    """Write everyone (and the encoder, and the tuned adapter at ``adapter_file`` if there is one)
    to ``path``; returns the manifest."""
    path = Path(path)
    people = [export_profile(store, p.name) for p in store.profiles()]
    names = [f"people/{n:04d}.json" for n in range(1, len(people) + 1)]
    manifest = {"format": FORMAT, "version": VERSION, "exported_at": now(), "people": names}
    try:
        with written_atomically(path) as temp, zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("manifest.json", json.dumps(manifest, indent=2))
            for name, person in zip(names, people):
                archive.writestr(name, json.dumps(person, ensure_ascii=False, indent=2))
            for file in sorted(Path(encoder_dir).glob("*")) if Path(encoder_dir).is_dir() else []:
                archive.write(file, f"encoder/{file.name}")
            if adapter_file is not None and Path(adapter_file).is_file():
                archive.write(adapter_file, ADAPTER_MEMBER)
    except OSError as error:
        raise InputError(f"could not write {path}: {error.strerror or error}") from None
    return manifest


def read_archive(path: Path | str) -> tuple[list[dict], dict[str, bytes]]:
    """Every person's export (checked) and the encoder's files, or ``InputError``."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = _json(archive, "manifest.json", path)
            if manifest.get("format") != FORMAT:
                raise InputError(f"{path.name}: not a Confidant archive (manifest format is {manifest.get('format')!r})")
            if manifest.get("version") != VERSION:
                raise InputError(f"{path.name}: archive version {manifest.get('version')!r}; this Confidant reads {VERSION}")
            files = manifest.get("people")
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                raise InputError(f"{path.name}: manifest.json people must be a list of file names")
            people = [_json(archive, name, path) for name in files]
            encoder = {info.filename.split("/", 1)[1]: _read(archive, info.filename, path)
                       for info in archive.infolist() if info.filename.startswith("encoder/") and not info.is_dir()}
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(f"{path.name}: not a readable zip archive ({error})") from None
    for name, person in zip(files, people):
        try:
            parse_export(person)
        except InputError as error:
            raise InputError(f"{path.name}: {name}: {error}") from None
    return people, encoder


def read_adapter(path: Path | str) -> bytes | None:
    """The tuned adapter file in the archive, or None (``InputError`` for an unreadable archive)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return _read(archive, ADAPTER_MEMBER, path) if ADAPTER_MEMBER in archive.namelist() else None
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(f"{path.name}: not a readable zip archive ({error})") from None


def _read(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise InputError(f"{path.name}: {name} is missing from the archive") from None
    if info.file_size > MAX_MEMBER_BYTES:
        raise InputError(f"{path.name}: {name} is too large ({info.file_size} bytes)")
    return archive.read(name)


def _json(archive: zipfile.ZipFile, name: str, path: Path) -> dict:
    try:
        value = json.loads(_read(archive, name, path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path.name}: {name} is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise InputError(f"{path.name}: {name} must hold a JSON object")
    return value


def import_archive(store: Store, encoders, memory, path: Path | str, progress: bool = False) -> ArchiveReport:
    people, encoder = read_archive(path)  # everything checked before anything is written
    report = ArchiveReport()
    staged = _stage_adapter(memory.settings, read_adapter(path), report)
    try:
        _import_people(store, memory, people, report, progress)
        report.encoder = _restore_encoder(encoders, memory, encoder, report)
        if staged is not None:
            report.adapter = _restore_adapter(store, memory.settings, staged, report)
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)
    return report


def _stage_adapter(settings, data: bytes | None, report: ArchiveReport) -> Path | None:
    """The archive's adapter as a file beside this device's, checked; None when it is left out."""
    if data is None:
        return None
    if tuned.adapter_path(settings.data_dir).is_file():
        report.adapter = "kept this device's"
        report.conflicts.append("this device already has a tuned adapter; kept it (teach again to learn from the import)")
        return None
    staged = Path(settings.data_dir) / f".{tuned.ADAPTER_FILE}.incoming"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(data)
    try:
        tuned.check_file(staged, settings.model_path)
    except AdapterError as error:
        staged.unlink(missing_ok=True)
        report.adapter = "left out: made for another base model" if "base model" in str(error) else "left out: unreadable"
        report.conflicts.append(f"the archive's tuned adapter was not restored: {error}")
        return None
    return staged


def _restore_adapter(store: Store, settings, staged: Path, report: ArchiveReport) -> str:
    profiles = [store.find_profile(r.name) for r in report.people]
    ids = [p.id for p in profiles if p is not None]
    exchanges = [int(e) for i in ids for e in store.memory_ids(i)]
    tuned.restore(staged, settings.data_dir, settings.model_path, ids, exchanges)
    return "restored from the archive"


def _import_people(store: Store, memory, people: list[dict], report: ArchiveReport, progress: bool) -> None:
    for person in people:
        here = store.find_profile(person["profile"]["name"])
        wanted = person["profile"].get("cloud_allowed", True)
        if here is not None and bool(here.cloud_allowed) != bool(wanted):
            report.conflicts.append(f"{here.name}: cloud consent differs; kept this device's "
                                    f"({'allowed' if here.cloud_allowed else 'never'})")
        report.people.append(import_profile(store, memory, person, progress=progress))


def _restore_encoder(encoders, memory, files: dict[str, bytes], report: ArchiveReport) -> str:
    if not files:
        return "none in the archive"
    target = encoders.encoder_dir
    if encoders.meta is not None:
        report.conflicts.append("this device already has a trained encoder; kept it (retrain to learn from the import)")
        return "kept this device's"
    if "meta.json" not in files:
        raise InputError("the archive's encoder has no meta.json")
    staging = target.with_name(target.name + ".incoming")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, data in files.items():
        (staging / Path(name).name).write_bytes(data)  # Path(name).name: no path escapes the folder
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    memory.sync_dialogue_vectors()  # vectors and prototypes now come from the restored encoder
    return "restored from the archive"


def describe(path: Path | str) -> str:
    people, encoder = read_archive(path)
    count = sum(len(c["exchanges"]) for p in people for c in p["conversations"])
    adapter = "a tuned adapter" if read_adapter(path) is not None else "no tuned adapter"
    return f"{len(people)} people, {count} exchanges, {'an' if encoder else 'no'} encoder, {adapter}"


__all__ = ["FORMAT", "VERSION", "ArchiveReport", "write_archive", "read_archive", "import_archive", "describe"]
