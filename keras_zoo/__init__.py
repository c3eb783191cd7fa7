"""keras-zoo's top floor: the `zoo` command line, the run configuration and the pipeline that ties
the catalog (`zoo`), the search (`tuning`), reports (`evaluation`) and exports (`export`).

>>> from keras_zoo import AutoModel, load_config
>>> from keras_zoo.pipeline import run
>>> outcome = run(load_config("examples/digits.yaml"), "out/digits")

Importing this package imports nothing: `zoo list` (keras_zoo.cli) starts without the config's
pydantic models or the estimator; each name loads on first use.
"""

__all__ = ["AutoModel", "RunConfig", "load_config", "parse_config"]


def __getattr__(name):
    if name == "AutoModel":
        from keras_zoo.automodel import AutoModel

        return AutoModel
    if name in ("RunConfig", "load_config", "parse_config"):
        from keras_zoo import config

        return getattr(config, name)
    raise AttributeError(name)
