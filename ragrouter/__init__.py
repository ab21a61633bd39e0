"""RAGRouter core library: data, labels, splits, features, retrieval, routers, evaluation, registry."""

import logging

# faiss logs every CPU-specific build it fails to import before the one that loads: not errors.
logging.getLogger("faiss.loader").setLevel(logging.WARNING)
