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
from zoo.layers.images import Augmentation, ChannelAffine
from zoo.layers.l2_normalize import L2Normalize
from zoo.layers.losses import SparseCategoricalCrossentropyWithSmoothing
from zoo.layers.metrics import BalancedAccuracy, MacroAUC, MacroF1
from zoo.layers.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
)
from zoo.layers.preprocessing import (
    ClassNames,
    DaysToCalendar,
    Impute,
    Standardize,
    NumberLookup,
    ParseBoolean,
    ParseDate,
    SelectColumns,
    StackCodes,
)
from zoo.layers.sampling import Sampling
from zoo.layers.schedules import OneCycleSchedule
from zoo.layers.series import FillForward, RestoreLevel, WindowNormalize
from zoo.layers.siamese import ContrastiveLoss, SiameseNetwork, TripletLoss
from zoo.layers.tabular import PeriodicEmbedding, PiecewiseLinear, SmoothClip

__all__ = [
    "Augmentation",
    "Autoencoder",
    "BalancedAccuracy",
    "ChannelAffine",
    "ClassNames",
    "ContrastiveLoss",
    "DaysToCalendar",
    "Distiller",
    "FillForward",
    "GenerativeAdversarialNetwork",
    "GraphConv",
    "Impute",
    "L2Normalize",
    "LearnedPositionalEmbedding",
    "MacroAUC",
    "MacroF1",
    "MultiHeadSelfAttention",
    "NormalizedAdjacency",
    "NumberLookup",
    "OneCycleSchedule",
    "ParseBoolean",
    "ParseDate",
    "PeriodicEmbedding",
    "PiecewiseLinear",
    "RestoreLevel",
    "Sampling",
    "ScaledDotProductAttention",
    "SelectColumns",
    "SiameseNetwork",
    "SinusoidalPositionalEncoding",
    "SmoothClip",
    "SparseCategoricalCrossentropyWithSmoothing",
    "StackCodes",
    "Standardize",
    "TripletLoss",
    "VariationalAutoencoder",
    "WindowNormalize",
]
