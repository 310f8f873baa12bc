"""Which machine a figure came from, in one line: every generated table and page names it."""

from __future__ import annotations

import os
import platform
import time

__all__ = ["machine_summary", "stamp"]


def _cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what `platform` says."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_summary() -> str:
    """`'<cpu model>, <n> CPUs, <arch>, <os>, torch <version>[, CUDA <gpu>]'` for this process's machine."""
    import torch

    parts = [_cpu_model(), f"{os.cpu_count()} CPUs", platform.machine(), f"{platform.system()} {platform.release()}"]
    parts.append(f"torch {torch.__version__}")
    if torch.cuda.is_available():
        parts.append(f"CUDA {torch.cuda.get_device_name(0)}")
    return ", ".join(parts)


def stamp(command: str) -> str:
    """`'<command> on <machine_summary()>, <UTC date and time>'`: the provenance line of a generated file."""
    return f"`{command}` on {machine_summary()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
