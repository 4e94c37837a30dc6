"""The Gradio web app: the Chat, People, Memory, Compare and Teach tabs around one ``Assistant``, and serving it.

It holds no logic of its own: every action calls the ``Assistant``, its store or its memory,
and every ``ConfidantError`` becomes a visible message without losing what the user typed.

Serving (``serve``): without a users file the app is one household's on one computer, bound to
127.0.0.1, and says so; binding to any other address then needs ``allow_public`` and prints a
warning. With a users file (``confidant serve --auth FILE``) Gradio asks for a login, wrong
passwords lock the login for a while (``app.auth.Gate``), and every handler checks from the
request which profiles the login may use (``app.auth.Access``), also for direct API calls.
The page opens only once both models have loaded and run once, so the first message is answered
as fast as any other; the server keeps its native heap small (``app.native_memory``).
The same server, on the same host and port, answers OpenAI-style clients under ``/v1``
(``app.api``): one FastAPI app carries those routes and the Gradio app mounted at ``/``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
import threading
import time
from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import FastAPI

from app import api, native_memory, web_chat, web_compare, web_files, web_memory, web_people, web_teach
from app.auth import Access, Gate, Users
from app.web_common import Shell
from assistant.errors import ConfidantError, ConfigError
from assistant.pipeline import Assistant
from assistant.settings import Settings

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def build_app(assistant: Assistant, users: Users | None = None) -> gr.Blocks:
    settings = assistant.settings
    shell = Shell(assistant, Access(assistant.store, users))
    where = (f"Logins on · serving on {settings.host}" if users else
             f"Single household · {'only this computer can connect' if _is_loopback(settings.host) else 'open to the network'}"
             f" ({settings.host})")
    with gr.Blocks(title=settings.assistant_name, fill_height=True) as app:
        gr.HTML(
            f'<div id="cf-header"><img src="/gradio_api/file={ASSETS / "icon.svg"}" alt="">'
            f'<div><h1>{settings.assistant_name}</h1><p id="cf-where">{where}</p></div></div>'
        )
        with gr.Tabs():
            chat_tab = gr.Tab("Chat", id="chat", elem_id="cf-tab-chat")
            people_tab = gr.Tab("People", id="people", elem_id="cf-tab-people")
            memory_tab = gr.Tab("Memory", id="memory", elem_id="cf-tab-memory")
            compare_tab = gr.Tab("Compare", id="compare", elem_id="cf-tab-compare")
            teach_tab = gr.Tab("Teach", id="teach", elem_id="cf-tab-teach")
            web_chat.build(shell, chat_tab, app)
            web_people.build(shell, people_tab)
            web_memory.build(shell, memory_tab)
            web_compare.build(shell, compare_tab)
            web_teach.build(shell, teach_tab)
    return app


def check_binding(settings: Settings, users: Users | None, allow_public: bool) -> None:
    """Refuse to open a login-less app to the network unless asked to, and warn when asked."""
    if users is not None or _is_loopback(settings.host):
        return
    if not allow_public:
        raise ConfigError(
            f"refusing to serve on {settings.host} without logins: anyone on the network could read every "
            "memory. Use --auth USERS_FILE (see `confidant users add`), or --allow-public if you really mean it"
        )
    print(f"WARNING: serving on {settings.host} without logins; anyone who can reach this address can read "
          "and change every person's memories.", file=sys.stderr, flush=True)


def _warm_up(assistant: Assistant) -> None:
    """Load and run both models once; a model that cannot load is reported here and again,
    as a message in the page, by the turn that needs it."""
    started = time.perf_counter()
    try:
        assistant.local.warm_up()
        assistant.memory.warm_up()
    except ConfidantError as error:
        print(f"Could not load the models: {error}", file=sys.stderr, flush=True)
        return
    print(f"Models ready in {time.perf_counter() - started:.1f} s", flush=True)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(settings: Settings, users_file: Path | None = None, allow_public: bool = False) -> None:
    users = Users.load(users_file) if users_file else None
    check_binding(settings, users, allow_public)
    native_memory.limit_arenas()  # before any worker thread allocates (docs/performance.md §5)
    assistant = Assistant(settings)
    # Gradio's copies of what it serves and receives live with the app's downloads, outside the
    # data directory, so that deleting a person finds them (assistant.people.copies)
    os.environ["GRADIO_TEMP_DIR"] = str(assistant.people.fresh_copies())
    print("Loading the models…", flush=True)
    warming = threading.Thread(target=_warm_up, args=(assistant,), daemon=True)
    warming.start()
    app = build_app(assistant, users)
    # The page opens only once a message would be answered at once: a message sent while the
    # models load would wait for them (2.5 s measured, docs/performance.md §5).
    warming.join()
    if settings.cloud_configured:  # only a cloud turn needs the PII detector: load it meanwhile
        from assistant.models.privacy import prepare

        threading.Thread(target=prepare, daemon=True).start()
    app.queue(default_concurrency_limit=settings.concurrency)
    server = FastAPI(title=settings.assistant_name, docs_url=None, redoc_url=None, openapi_url=None,
                     lifespan=_clearing_copies(assistant))
    server.include_router(api.routes(assistant, users))  # before the mount: /v1 is never Gradio's
    server = gr.mount_gradio_app(
        server,
        app,
        path="/",
        server_name=settings.host,
        server_port=settings.port,
        favicon_path=str(ASSETS / "icon.svg"),
        allowed_paths=[str(ASSETS)],
        css_paths=[str(ASSETS / "style.css")],
        theme=gr.themes.Soft(primary_hue="emerald"),
        footer_links=[],
        show_error=True,
        max_file_size=settings.max_import_bytes,  # uploads (imports) beyond the limit are refused by Gradio
        auth=Gate(users).check if users else None,
        auth_message="Log in to use the household's assistant." if users else None,
    )
    if users:
        web_files.keep_copies_per_login(server, assistant.people)
    print(f"Confidant is serving on http://{settings.host}:{settings.port} (data in {settings.data_dir})"
          + (f", logins from {users_file}" if users else "") + f"; OpenAI-compatible API at /v1", flush=True)
    uvicorn.run(server, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5)


def _clearing_copies(assistant: Assistant):
    """The server's lifespan: when it stops (uvicorn re-raises SIGTERM after its shutdown, so
    this is where a stop still runs code), nothing made for download outlives it."""

    @contextlib.asynccontextmanager
    async def lifespan(_server):
        try:
            yield
        finally:
            assistant.people.clear_copies()

    return lifespan
