"""What the CPU can do, asked once: the one place models decide on bfloat16."""

from __future__ import annotations

import functools
import re
from pathlib import Path


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), per ``/proc/cpuinfo``.

    False where the file cannot be read (not Linux).
    """
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))
