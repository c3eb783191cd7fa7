"""Keras Tuner search over the catalog, tracked in MLflow: hypermodel, oracles, search, distributed mode.

>>> from tuning import search
>>> from zoo.data import load_dataset
>>> result = search(load_dataset("iris"), families=["mlp"], max_trials=3, max_epochs=5)
"""

from tuning.options import ALGORITHMS, SearchOptions
from tuning.search import LocalRunner, SearchFailed, SearchResult, search

__all__ = ["ALGORITHMS", "LocalRunner", "SearchFailed", "SearchOptions", "SearchResult", "search"]


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
