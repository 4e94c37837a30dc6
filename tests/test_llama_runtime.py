"""Every llama.cpp model the project creates takes the path that works on AMX CPUs (issue 13).

The checks hold on any CPU: the decision reads the real library's system info, the wiring is
checked with the decision forced both ways, the OpenAI-compatible server the tests use is built
by the same code, and a source walk keeps ``assistant/models/llama_runtime.py`` the only place a model
is created. On a CPU with AMX the decode canary runs the crashing shape in a child process, so
a segmentation fault fails the test instead of killing the run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.models import llama_runtime
from assistant.models.local import LocalModel
from assistant.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for folder in ("app", "assistant", "profiles", "bench", "tests") for p in (ROOT / folder).rglob("*.py")]
AMX_BUILD = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | REPACK = 1 | "
PLAIN_BUILD = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | REPACK = 1 | "


def test_the_decision_turns_extra_buffers_off_exactly_where_the_build_has_amx_kernels():
    assert llama_runtime.extra_buffer_types_allowed(AMX_BUILD) is False
    assert llama_runtime.extra_buffer_types_allowed(PLAIN_BUILD) is True
    assert llama_runtime.extra_buffer_types_allowed(AMX_BUILD.replace("AMX_INT8 = 1", "AMX_INT8 = 0")) is True
    real = llama_runtime._system_info()
    assert real.startswith("CPU :") and ("AMX_INT8 = 1" in real) is (not llama_runtime.extra_buffer_types_allowed())


@pytest.fixture
def as_if(monkeypatch):
    """Make the library report another build's CPU features (one decision, forced)."""

    def force(info: str) -> None:
        monkeypatch.setattr(llama_runtime, "_system_info", lambda: info)

    return force


@pytest.mark.parametrize("build, expected", [(AMX_BUILD, False), (PLAIN_BUILD, True)])
def test_the_project_model_follows_the_decision(tmp_path, as_if, build, expected):
    as_if(build)
    model = LocalModel(load_settings(data_dir=tmp_path, n_threads=1))
    assert model.llm.model_params.use_extra_bufts is expected


@pytest.mark.parametrize("build, expected", [(AMX_BUILD, False), (PLAIN_BUILD, True)])
def test_the_test_server_builds_its_model_the_same_way(tmp_path, as_if, build, expected, monkeypatch):
    """``python -m assistant.models.llama_runtime serve`` runs llama_cpp.server's main; its model proxy is
    created here in-process by the same code path, without binding a port."""
    import llama_cpp.server.app as server_app
    import uvicorn

    as_if(build)
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: None)  # build the app, don't serve it
    llama_runtime.serve(["--model", str(load_settings(data_dir=tmp_path).model_path), "--n_ctx", "256",
                         "--verbose", "False"])
    llama = server_app._llama_proxy(None)  # the proxy every request's handler gets its model from
    assert llama.model_params.use_extra_bufts is expected


def test_only_llama_runtime_creates_llama_models_or_servers():
    offenders = []
    for path in SOURCES:
        if path.name == "llama_runtime.py" or path == Path(__file__).resolve():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "Llama" or isinstance(node, ast.Attribute) and node.attr == "Llama":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} uses Llama")
            if isinstance(node, ast.Constant) and node.value in ("llama_cpp.server", "llama_cpp.server.__main__"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} starts llama_cpp.server directly")
    assert offenders == []


DECODE = textwrap.dedent("""
    import sys
    from assistant.models.local import LocalModel
    from assistant.settings import load_settings
    model = LocalModel(load_settings(data_dir=sys.argv[1], max_tokens=8, temperature=0.0, n_threads=1))
    prompt = model.fit({"role": "system", "content": "You are helpful."}, [],
                       {"role": "user", "content": "Hello, how are you today? Tell me about the weather."})
    print("".join(model.stream(prompt)).strip() or "<empty>")
""")


def test_a_prompt_decodes_in_a_child_process(tmp_path):
    """The shape that crashed on AMX CPUs (a multi-token prompt, then sampling), in a child process
    so that a segmentation fault is a failed assertion, not a dead test run."""
    done = subprocess.run([sys.executable, "-c", DECODE, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, f"exit {done.returncode} (-11 or 139 is the AMX crash): {done.stderr[-800:]}"
    assert done.stdout.strip()
