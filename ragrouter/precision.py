"""`auto` precision: bfloat16 where the hardware computes it natively, float32 elsewhere.

bfloat16 is fast only on hardware with bfloat16 units. On a 2-core CPU with AVX512-BF16 and
AMX, MiniLM encodes 3x faster in bfloat16 than in float32; on a 2-core AMD EPYC (Zen 3, AVX2
only) bfloat16 is emulated and the same encoder runs 5x slower than in float32 (96 against
20 ms a prompt, 6 against 37 prompts/s), and bfloat16 autocast fine-tunes 23x slower. So the
encoders' and fine-tuning routers' default precision follows the machine they run on.
"""

from __future__ import annotations

from functools import lru_cache

AUTO = "auto"


@lru_cache(maxsize=None)
def native_bfloat16(device: str = "cpu") -> bool:
    """Whether `device` computes bfloat16 matrix products in hardware: AVX512-BF16 or AMX on a
    CPU, compute capability 8.0 or newer on a CUDA GPU."""
    import torch

    if torch.device(device).type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch's CPU feature probes
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def resolve_precision(dtype: str, device: str = "cpu") -> str:
    """`dtype` itself, or for `auto` what `device` computes fastest: bfloat16 or float32."""
    if dtype != AUTO:
        return dtype
    return "bfloat16" if native_bfloat16(device) else "float32"


def auto_precision() -> str:
    """What `auto` means on this machine's CPU (a cache key: results computed in bfloat16 on
    one machine are not reused where `auto` computes in float32)."""
    return resolve_precision(AUTO)
