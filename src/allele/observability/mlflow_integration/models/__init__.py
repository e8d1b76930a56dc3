"""MLflow pyfunc models built from code (MLflow's models-from-code: no pickle).

Each module here is a model definition file: MLflow stores the file itself with the model and
runs it when the model is loaded; the module ends with ``mlflow.models.set_model(...)``. The
state of a model (a genome, a component's ``to_dict()``) is a JSON artifact beside it.
"""
