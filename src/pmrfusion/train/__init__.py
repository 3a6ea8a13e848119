"""One training loop for every method."""

from pmrfusion.optim import OptimizerSpec
from pmrfusion.train.trainer import TrainConfig, TrainResult, predict, seed_everything, train

__all__ = ["OptimizerSpec", "TrainConfig", "TrainResult", "predict", "seed_everything", "train"]
