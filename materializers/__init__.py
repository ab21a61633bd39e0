"""ZenML materializers for RAGRouter's types: Parquet, CSV, safetensors, FAISS and JSON; no pickle."""

from materializers.bundle import RouterBundleMaterializer
from materializers.evaluation import EvaluationReportMaterializer, OutOfFoldScoresMaterializer
from materializers.faiss_index import FaissIndexMaterializer
from materializers.labels import LabelsMaterializer
from materializers.promotion import PromotionDecisionMaterializer
from materializers.query_features import QueryFeaturesMaterializer
from materializers.records import RoutingRecordsMaterializer
from materializers.validation import ValidationReportMaterializer

__all__ = [
    "EvaluationReportMaterializer",
    "FaissIndexMaterializer",
    "LabelsMaterializer",
    "OutOfFoldScoresMaterializer",
    "PromotionDecisionMaterializer",
    "QueryFeaturesMaterializer",
    "RouterBundleMaterializer",
    "RoutingRecordsMaterializer",
    "ValidationReportMaterializer",
]
