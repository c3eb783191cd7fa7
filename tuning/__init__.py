"""Keras Tuner search over the catalog, tracked in MLflow: hypermodel, oracles, search, CLI.

>>> from tuning import search
>>> from zoo.data import load_dataset
>>> result = search(load_dataset("iris"), families=["mlp"], max_trials=3, max_epochs=5)
"""

from tuning.config import RunConfig, load_config, parse_config
from tuning.search import SearchFailed, SearchResult, run_search, search

__all__ = ["RunConfig", "SearchFailed", "SearchResult", "load_config", "parse_config", "run_search",
           "search"]


def __getattr__(name):
    # Keras Tuner classes import TensorFlow: load them on first use only
    if name == "ZooHyperModel":
        from tuning.hypermodel import ZooHyperModel

        return ZooHyperModel
    if name == "EvolutionOracle":
        from tuning.oracles import EvolutionOracle

        return EvolutionOracle
    if name == "ZooTuner":
        from tuning.tuner import ZooTuner

        return ZooTuner
    raise AttributeError(name)
