from dynamo_tune.cli.main import main

__all__ = ["main"]
