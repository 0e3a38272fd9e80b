"""Training of the image, kernel and tilt priors."""
from .config import TrainConfig
from .trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "train"]
