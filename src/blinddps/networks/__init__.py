"""Score networks: the ADM U-Net of the paper's priors, its config, checkpoint I/O."""
from .config import UNetConfig
from .unet import ADMUNet

__all__ = ["UNetConfig", "ADMUNet"]
