"""dynamo-tune: tune an NVIDIA Dynamo router with Optuna studies."""

__version__ = "0.1.0"
