"""RAGRouter, the product: a package of its own, in the manner of peft's per-method packages.

config.py    its settings (encoder, parse, network, training, blend)
network.py   the network (graph_encoder.py, fusion.py its parts)
trainer.py   the network's training loop
blend.py     the final score (linear_experts.py: the linear experts it blends in)
router.py    the router: fit, score, save and load
"""

from ragrouter.routers.ragrouter.config import RAGRouterConfig
from ragrouter.routers.ragrouter.router import RAGRouter

__all__ = ["RAGRouter", "RAGRouterConfig"]
