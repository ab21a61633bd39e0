"""`ragrouter serve`: the routing gateway, settings from `--config gateway.yaml` and flags (flags win)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ragrouter_cli.yaml_file import read_mapping

# flag -> the setting it overrides, as a path in the gateway config
FLAGS: dict[str, tuple[str, ...]] = {
    "model": ("model",),
    "host": ("host",),
    "port": ("port",),
    "strong_url": ("strong", "url"),
    "strong_model": ("strong", "model"),
    "strong_key_env": ("strong", "key_env"),
    "weak_url": ("weak", "url"),
    "weak_model": ("weak", "model"),
    "weak_key_env": ("weak", "key_env"),
    "strong_fraction": ("cost", "strong_fraction"),
    "feedback_store": ("feedback", "store"),
    "token_env": ("token_env",),
    "reload_interval": ("reload_interval_s",),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="gateway settings as YAML (docs/gateway.md); flags override them")
    parser.add_argument("--model", help="models:/<name>@<alias>, models:/<name>/<version> or a bundle folder (default models:/ragrouter@champion)")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 6060)")
    for role in ("strong", "weak"):
        parser.add_argument(f"--{role}-url", help=f"the {role} model's OpenAI-compatible base URL (.../v1)")
        parser.add_argument(f"--{role}-model", help=f"the {role} model's name at that endpoint (default: its name in the training data)")
        parser.add_argument(f"--{role}-key-env", help=f"environment variable holding the {role} endpoint's API key")
    parser.add_argument("--strong-fraction", type=float, help="share of traffic for the strong model (default: the model's calibrated one)")
    parser.add_argument("--feedback-store", help="JSONL file or postgresql:// URL where /feedback outcomes go (default: feedback off)")
    parser.add_argument("--token-env", help="environment variable holding a bearer token required on every endpoint but /health")
    parser.add_argument("--reload-interval", type=float, help="seconds between checks for a moved alias (0: never; default 10)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def gateway_settings(args: argparse.Namespace) -> dict[str, Any]:
    settings = read_mapping(args.config, "gateway config") if args.config else {}
    for flag, key_path in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            node = settings
            for key in key_path[:-1]:
                node = node.setdefault(key, {})
            node[key_path[-1]] = value
    return settings


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ragrouter.serving.app import create_app
    from ragrouter.serving.config import GatewayConfig

    config = GatewayConfig.from_dict(gateway_settings(args))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=args.log_level, access_log=False)
    return 0
