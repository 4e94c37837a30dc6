"""What a measurement ran on: ``describe()`` gives the CPU model, its cores, the instruction sets
that change this project's speed (AVX2, AVX-512, native bf16, AMX), the RAM and the load from
other programs. Training and llama.cpp figures differ about 2x between CPUs with and without
AVX-512/AMX (docs/tuning.md), so every benchmark and evaluation records it beside its figures."""

from __future__ import annotations

import os
import platform

SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8")


def describe() -> dict:
    import psutil

    try:
        with open("/proc/cpuinfo") as info:
            lines = info.read().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        flags = set(next(line.split(":", 1)[1].split() for line in lines if line.startswith("flags")))
    except (OSError, StopIteration):
        model, flags = platform.processor(), set()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "isa": [flag for flag in SPEED_FLAGS if flag in flags],
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
