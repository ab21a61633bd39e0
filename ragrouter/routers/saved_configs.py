"""Router configs saved before the run config was one typed tree, read as today's.

Registered routers outlive the code that trained them: a champion saved with flat settings
(`encoder: all-MiniLM-L6-v2`, `encoder_dtype`, `max_seq_length`, RAGRouter's `hidden` or
`epochs` beside its other fields) must still load, to be served or re-evaluated by the
promotion gate. Those routers read a long prompt's head, so they keep `keep: head`.
"""

from __future__ import annotations

from typing import Any

# old flat encoder settings -> EncoderConfig fields
_ENCODER_FIELDS = {"encoder": "name", "max_seq_length": "max_tokens", "encoder_dtype": "dtype"}
# RAGRouter's flat settings -> the nested config that holds them now
_RAGROUTER_SECTIONS = {
    "network": ("hidden", "heads", "sage_layers", "dropout", "syntax", "fusion", "retrieval"),
    "training": ("target", "epochs", "patience", "early_stopping", "average_checkpoints", "batch_size", "learning_rate", "weight_decay", "validation_fraction", "seed"),
    "blend": ("experts", "network_weight", "neighbour_weight", "tfidf_alpha", "expert_folds"),
}
_RENAMED = {"max_length": "max_tokens", "train_batch_size": "batch_size"}
_OLD_KEYS = {"encoder_dtype", "max_seq_length", *_RENAMED, "freeze_layers", "max_parse_chars", *(name for names in _RAGROUTER_SECTIONS.values() for name in names)}
_ENCODING_ROUTERS = ("knn", "sw_ranking", "mf", "ragrouter", "ragrouter_llm")
# MiniLM's layers: bert's `freeze_layers` (lower layers fixed) as `train_last_layers`
_MINILM_LAYERS = 6


def upgrade_saved_config(router: str, config: dict[str, Any]) -> dict[str, Any]:
    """`config` as saved by `router`, in today's shape (unchanged when it already is)."""
    config = dict(config)
    old_keys = _OLD_KEYS if router == "ragrouter" else _OLD_KEYS - {name for names in _RAGROUTER_SECTIONS.values() for name in names}
    if not isinstance(config.get("encoder"), str) and not set(config) & old_keys:
        return config  # saved by today's code
    encoder = {"keep": "head"}
    for old, new in _ENCODER_FIELDS.items():
        if old in config:
            encoder[new] = config.pop(old)
    if router == "ragrouter":
        encoder["max_tokens"] = config.pop("max_tokens", 256)
        config["parse"] = {"max_chars": config.pop("max_parse_chars", 2000), "max_nodes": config.pop("max_nodes", 256)}
        for section, names in _RAGROUTER_SECTIONS.items():
            config[section] = {name: config.pop(name) for name in names if name in config}
    elif router in ("knn", "sw_ranking", "mf"):
        encoder["batch_size"] = config.pop("batch_size", 32)
    if router == "bert" and "freeze_layers" in config:
        frozen = config.pop("freeze_layers")
        config["train_last_layers"] = None if frozen <= 0 else max(_MINILM_LAYERS - frozen, 0)
    for old, new in _RENAMED.items():
        if old in config:
            config[new] = config.pop(old)
    if router in _ENCODING_ROUTERS:
        config["encoder"] = encoder
    return config
