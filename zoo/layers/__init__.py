"""Custom Keras objects of the catalog, each registered serializable under the `zoo` package so
every model saves to `.keras` and loads with `safe_mode=True` and no `custom_objects`."""

from zoo.layers.attention import MultiHeadSelfAttention, ScaledDotProductAttention
from zoo.layers.losses import SparseCategoricalCrossentropyWithSmoothing
from zoo.layers.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from zoo.layers.schedules import OneCycleSchedule

__all__ = [
    "LearnedPositionalEmbedding",
    "MultiHeadSelfAttention",
    "OneCycleSchedule",
    "ScaledDotProductAttention",
    "SinusoidalPositionalEncoding",
    "SparseCategoricalCrossentropyWithSmoothing",
]
