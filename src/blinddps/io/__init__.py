"""File formats used by the CLI: images in and out, atomic writes, result figures.

Public API images are float tensors in [0, 1]: (1, C, H, W) with C = 1 or 3.
"""
from .atomic import (
    InputOverwriteError,
    atomic_path,
    atomic_write,
    ensure_not_input,
    save_npy_atomic,
    write_json_atomic,
)
from .figures import image_grid, kernel_to_image, save_figure, tile_figure
from .images import (
    READ_SUFFIXES,
    WRITE_FORMATS,
    ImageReadError,
    LoadedImage,
    WriteInfo,
    apply_exif_orientation,
    list_images,
    read_image,
    tensor_to_pil,
    write_image,
)

__all__ = [
    "InputOverwriteError",
    "atomic_path",
    "atomic_write",
    "ensure_not_input",
    "save_npy_atomic",
    "write_json_atomic",
    "image_grid",
    "kernel_to_image",
    "save_figure",
    "tile_figure",
    "READ_SUFFIXES",
    "WRITE_FORMATS",
    "ImageReadError",
    "LoadedImage",
    "WriteInfo",
    "apply_exif_orientation",
    "list_images",
    "read_image",
    "tensor_to_pil",
    "write_image",
]
