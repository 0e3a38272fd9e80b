"""Score networks: the ADM U-Net of the paper's priors, its config, checkpoint I/O.

``UNetConfig`` (typed, paper-YAML compatible) -> ``ADMUNet`` (state-dict compatible with
the published checkpoints); ``load_adm`` / ``save_adm`` read ``.pt`` pickles and write
safetensors + JSON; ``infer_config`` recovers a config from state-dict shapes.
"""
from .config import UNetConfig
from .infer import infer_config
from .load import CheckpointError, load_adm, save_adm, unwrap_state_dict
from .unet import ADMUNet

__all__ = ["UNetConfig", "ADMUNet", "load_adm", "save_adm", "CheckpointError", "infer_config",
           "unwrap_state_dict"]
