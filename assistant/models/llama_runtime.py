"""Every llama.cpp model Confidant creates comes from here, so it runs on CPUs with Intel AMX.

Contract:
- ``create_llama(**kwargs)`` is the only place in the project that constructs a ``llama_cpp.Llama``
  (a test walks the sources to keep it so); the app, the CLI, the benchmarks and the evaluations
  all get their model through it.
- ``python -m assistant.models.llama_runtime serve ARGS…`` runs llama-cpp-python's OpenAI-compatible
  server (``python -m llama_cpp.server ARGS…``) with the same fix; the tests' "cloud" runs this way.
- ``extra_buffer_types_allowed()`` is the one decision: llama.cpp's *extra buffer types* (weights
  repacked into CPU-specific layouts) stay on, as llama.cpp ships them, except where this build has
  AMX kernels. There the AMX buffer takes Q4_0/Q4_1/Q8_0/K-quant weights and crashes with a
  segmentation fault at the first decode (upstream llama.cpp issue 20824), so they are turned off
  and the weights stay in ordinary CPU memory, which every kernel reads correctly.

Why a load-time setting and not a build without AMX: a build flag does not reach a wheel pip has
already cached or a llama-cpp-python installed by other means, while the setting holds whatever
build is present. On CPUs without AMX it changes nothing, so their repacked kernels (Q4_0, Q4_K,
IQ4_NL, Q8_0 on AVX2/AVX-512, KleidiAI on Arm) keep their speed; the bundled Q4_1 model has no
repacked kernel other than AMX's anyway. ``Llama()`` has no keyword for the field, so the defaults
llama-cpp-python starts every model from are wrapped once, here.
"""

from __future__ import annotations

import functools
import re
import sys

import llama_cpp
from llama_cpp import llama_cpp as _bindings

_AMX_KERNELS = re.compile(r"\bAMX_INT8 = 1\b")


@functools.cache
def _system_info() -> str:
    return _bindings.llama_print_system_info().decode("utf-8", errors="replace")


def extra_buffer_types_allowed(system_info: str | None = None) -> bool:
    """Whether llama.cpp's extra buffer types are safe with this build (``system_info`` as
    ``llama_print_system_info()`` prints it; read from the loaded library when omitted)."""
    return not _AMX_KERNELS.search(_system_info() if system_info is None else system_info)


_stock_default_params = _bindings.llama_model_default_params


def _default_params_for_this_cpu() -> _bindings.llama_model_params:
    params = _stock_default_params()
    params.use_extra_bufts = extra_buffer_types_allowed()
    return params


def install() -> None:
    """Make every model llama-cpp-python creates in this process start from safe defaults."""
    _bindings.llama_model_default_params = _default_params_for_this_cpu


def create_llama(**kwargs) -> llama_cpp.Llama:
    """``llama_cpp.Llama(**kwargs)`` with the extra-buffer decision applied."""
    install()
    return llama_cpp.Llama(**kwargs)


def serve(argv: list[str]) -> None:
    """llama-cpp-python's OpenAI-compatible server, its models created with the same defaults."""
    install()
    from llama_cpp.server.__main__ import main

    sys.argv = ["llama_cpp.server", *argv]
    main()


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"]:
        sys.exit("usage: python -m assistant.models.llama_runtime serve [llama_cpp.server arguments]")
    serve(sys.argv[2:])
