"""keras-zoo's top floor: the `zoo` command line, the run configuration and the pipeline that ties
the catalog (`zoo`), the search (`tuning`), reports (`evaluation`) and exports (`export`).

>>> from keras_zoo.config import load_config
>>> from keras_zoo.pipeline import run
>>> outcome = run(load_config("examples/digits.yaml"), "out/digits")
"""

from keras_zoo.automodel import AutoModel
from keras_zoo.config import RunConfig, load_config, parse_config

__all__ = ["AutoModel", "RunConfig", "load_config", "parse_config"]
