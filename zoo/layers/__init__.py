"""Custom Keras objects of the catalog, each registered serializable under the `zoo` package so
every model saves to `.keras` and loads with `safe_mode=True` and no `custom_objects`."""

from zoo.layers.attention import MultiHeadSelfAttention, ScaledDotProductAttention
from zoo.layers.distiller import Distiller
from zoo.layers.generative import (
    Autoencoder,
    GenerativeAdversarialNetwork,
    VariationalAutoencoder,
)
from zoo.layers.graph_conv import GraphConv, NormalizedAdjacency
from zoo.layers.l2_normalize import L2Normalize
from zoo.layers.losses import SparseCategoricalCrossentropyWithSmoothing
from zoo.layers.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
)
from zoo.layers.sampling import Sampling
from zoo.layers.schedules import OneCycleSchedule
from zoo.layers.siamese import ContrastiveLoss, SiameseNetwork, TripletLoss

__all__ = [
    "Autoencoder",
    "ContrastiveLoss",
    "Distiller",
    "GenerativeAdversarialNetwork",
    "GraphConv",
    "L2Normalize",
    "LearnedPositionalEmbedding",
    "MultiHeadSelfAttention",
    "NormalizedAdjacency",
    "OneCycleSchedule",
    "Sampling",
    "ScaledDotProductAttention",
    "SiameseNetwork",
    "SinusoidalPositionalEncoding",
    "SparseCategoricalCrossentropyWithSmoothing",
    "TripletLoss",
    "VariationalAutoencoder",
]
