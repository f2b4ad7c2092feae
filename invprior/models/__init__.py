"""Network architectures, training loops and safetensors checkpoint IO."""

from .checkpoint import EMA, load_state, load_weights, save_state, save_weights
from .denoiser_net import DenoiserUNet

__all__ = ["EMA", "DenoiserUNet", "load_state", "load_weights", "save_state", "save_weights"]
