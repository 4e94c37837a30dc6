"""Files the web app serves for download belong to the login they were made for.

Gradio serves any file it has a copy of (``/gradio_api/file=<path>``) to anyone logged in, so
with logins on, a request for a file the app made (``People.download_owner`` knows it by name)
from another login is answered 404, as if there were no such file. The login is read the way
Gradio reads it: its access-token cookie, looked up in the mounted Gradio app's tokens.

``keep_copies_per_login(server, people)`` adds that check to the FastAPI ``server`` once the
Gradio app is mounted on it.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from gradio.routes import App

FILE_ROUTE = "/file="


def _gradio_app(server: FastAPI) -> App:
    return next(route.app for route in server.routes if isinstance(getattr(route, "app", None), App))


def _login(gradio: App, request: Request) -> str | None:
    token = (request.cookies.get(f"access-token-{gradio.cookie_id}")
             or request.cookies.get(f"access-token-unsecure-{gradio.cookie_id}"))
    return gradio.tokens.get(token)


def keep_copies_per_login(server: FastAPI, people) -> None:
    gradio = _gradio_app(server)

    @server.middleware("http")
    async def own_files_only(request: Request, call_next):
        path = unquote(request.url.path)
        if FILE_ROUTE in path:
            owner = people.download_owner(PurePosixPath(path.split(FILE_ROUTE, 1)[1]).name)
            if owner is not None and owner != _login(gradio, request):
                return PlainTextResponse("Not found", status_code=404)
        return await call_next(request)
