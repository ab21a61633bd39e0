"""ZenML steps: thin wrappers over the ragrouter library, one step per file."""

from steps.build_index import build_index
from steps.evaluate_routers import evaluate_routers
from steps.extract_features import extract_features
from steps.ingest_data import ingest_data
from steps.label_with_judge import label_with_judge
from steps.link_model_version import link_model_version
from steps.make_labels import make_labels
from steps.make_splits import make_splits
from steps.promote_router import promote_router
from steps.publish_ablations import publish_ablations
from steps.publish_report import publish_report
from steps.register_router import register_router
from steps.score_out_of_fold import score_out_of_fold
from steps.train_router import train_router
from steps.validate_data import validate_data

__all__ = [
    "build_index",
    "evaluate_routers",
    "extract_features",
    "ingest_data",
    "label_with_judge",
    "link_model_version",
    "make_labels",
    "make_splits",
    "promote_router",
    "publish_ablations",
    "publish_report",
    "register_router",
    "score_out_of_fold",
    "train_router",
    "validate_data",
]
