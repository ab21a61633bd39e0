"""MLflow "model from code": the logged model is this file, not a pickled Python object."""

import mlflow.models

from ragrouter.registry.pyfunc import RouterModel

mlflow.models.set_model(RouterModel())
