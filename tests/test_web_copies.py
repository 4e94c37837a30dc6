"""Files made in the browser (exports, charts) and Gradio's copies of them and of uploads: served
only to the login they were made for, and deleted with the person (a real server with logins,
real HTTP, the Gradio client as each login)."""

from pathlib import Path

import httpx

from tests.browser import running_server
from tests.test_web import db_rows
from tests.test_web_manage import two_families  # noqa: F401 (a fixture)

DENTIST = b"dentist appointment"  # Mum's words (two_families)


def logged_in(url: str, login: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    assert client.post("login", data={"username": login, "password": password}).status_code == 200
    return client


def holding(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()] if folder.exists() else []


def test_downloads_are_served_to_their_login_only_and_deleted_with_the_person(two_families, tmp_path):
    from gradio_client import Client, handle_file

    data_dir, users = two_families
    copies = tmp_path / "copies"
    [(mum_id,)] = db_rows(data_dir, "SELECT id FROM profiles WHERE name = 'Mum'")
    with running_server(data_dir, "--auth", str(users), env_extra={"CONFIDANT_COPIES_DIR": str(copies)}) as url:
        mum = Client(url, auth=("mum", "battery staple"), verbose=False, download_files=str(tmp_path / "got"))
        mum.predict(api_name="/refresh")  # the People tab opened: her name among the choices
        mum.predict(mum_id, api_name="/export")
        mum.predict(mum_id, api_name="/show")  # her charts
        made = [p for p in (copies / "files" / "mum").iterdir()]
        assert any(p.name.endswith(".confidant.json") for p in made) and any(p.suffix == ".png" for p in made)
        [export] = [p for p in (copies / "served").rglob("*.confidant.json")]  # Gradio's copy, the one it serves
        assert DENTIST in export.read_bytes()
        served_pngs = list((copies / "served").rglob("*.png"))
        assert served_pngs

        links = [f"gradio_api/file={p}" for p in [export, *served_pngs]]
        as_mum, as_dad = logged_in(url, "mum", "battery staple"), logged_in(url, "dad", "correct horse")
        assert [as_mum.get(link).status_code for link in links] == [200] * len(links)
        assert DENTIST in as_mum.get(links[0]).content
        assert [as_dad.get(link).status_code for link in links] == [404] * len(links)  # another login's files
        assert DENTIST not in as_dad.get(links[0]).content

        uploaded = tmp_path / "mum.confidant.json"
        uploaded.write_bytes(export.read_bytes())
        mum.predict(handle_file(str(uploaded)), api_name="/import_person")
        assert [p for p in (copies / "served").rglob("mum.confidant.json")] == []  # the upload, once read

        mum.predict(mum_id, api_name="/ask_delete")
        mum.predict(mum_id, api_name="/confirmed")
        assert db_rows(data_dir, "SELECT name FROM profiles") == [("Dad",)]
        assert holding(copies, DENTIST) == []  # her export, in the app's folder and Gradio's copy
        assert [p for p in made if p.exists()] == [] and not any(p.exists() for p in served_pngs)
        assert [as_mum.get(link).status_code for link in links[:1]] != [200]
    assert not (copies / "files").exists() and not (copies / "served").exists()  # nothing outlives the server
