"""BLiTZ's ``blitz.modules``: the Bayesian layers as ``nn.Module`` s on fblitz's functional core."""

from fblitz.compat.modules.base_bayesian_module import BayesianModule, BayesianRNN
from fblitz.compat.modules.conv_bayesian_layer import BayesianConv1d, BayesianConv2d, BayesianConv3d
from fblitz.compat.modules.embedding_bayesian_layer import BayesianEmbedding
from fblitz.compat.modules.gru_bayesian_layer import BayesianGRU
from fblitz.compat.modules.linear_bayesian_layer import BayesianLinear
from fblitz.compat.modules.lstm_bayesian_layer import BayesianLSTM
from fblitz.compat.modules.weight_sampler import PriorWeightDistribution, TrainableRandomDistribution

__all__ = [
    "BayesianConv1d",
    "BayesianConv2d",
    "BayesianConv3d",
    "BayesianEmbedding",
    "BayesianGRU",
    "BayesianLSTM",
    "BayesianLinear",
    "BayesianModule",
    "BayesianRNN",
    "PriorWeightDistribution",
    "TrainableRandomDistribution",
]
