"""The router as an MLflow pyfunc: prompts in, P(strong needed) and the route out.

Serving (`mlflow models serve -m models:/ragrouter@champion`) accepts
`{"inputs": ["prompt", ...]}` or `{"dataframe_records": [{"prompt": "..."}]}`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

INPUT_COLUMN = "prompt"
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string")]),  # unnamed: a plain list of prompts or a `prompt` column
    outputs=Schema([ColSpec("double", "p_strong"), ColSpec("boolean", "route_to_strong"), ColSpec("string", "model")]),
)

INPUT_EXAMPLE = pd.DataFrame({INPUT_COLUMN: ["What is the capital of France?", "Prove that sqrt(2) is irrational."]})


def prompts_of(model_input: Any) -> list[str]:
    """Accept a list of prompts, a Series, or a DataFrame with a `prompt` column (or one column)."""
    if isinstance(model_input, pd.DataFrame):
        column = INPUT_COLUMN if INPUT_COLUMN in model_input.columns else model_input.columns[0]
        return model_input[column].astype(str).tolist()
    if isinstance(model_input, (pd.Series, np.ndarray, list, tuple)):
        return [str(p) for p in model_input]
    if isinstance(model_input, str):
        return [model_input]
    raise TypeError(f"expected prompts as a list or a DataFrame with a '{INPUT_COLUMN}' column, got {type(model_input).__name__}")


class RouterModel(mlflow.pyfunc.PythonModel):
    """Loads the saved RouterBundle from the model's artifacts; no pickled state."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        from ragrouter.bundle import RouterBundle

        self.bundle = RouterBundle.load(Path(context.artifacts["bundle"]))
        self.bundle.router.prepare_serving()
        self.models = self.bundle.metadata.get("models", {"strong": "strong", "weak": "weak"})

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would read them as a schema
        scores, to_strong = self.bundle.route(prompts_of(model_input))
        return pd.DataFrame(
            {
                "p_strong": scores.astype(np.float64),
                "route_to_strong": to_strong,
                "model": np.where(to_strong, self.models["strong"], self.models["weak"]),
            }
        )
