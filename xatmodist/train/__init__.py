"""Training: the lag pretext task (encoder), downscalers, inpainters; checkpoints, resume.

Needs only the core dependencies plus tqdm; works on any CF-compliant dataset
(numpy, dask, zarr, netCDF, GRIB via cfgrib).
"""

from .downscaler import fit_downscaler
from .encoder import calibrate_alpha, evaluate_encoder, fit_encoder, rank_loss
from .inpainter import fit_inpainter

__all__ = [
    "fit_encoder",
    "evaluate_encoder",
    "calibrate_alpha",
    "fit_downscaler",
    "fit_inpainter",
    "rank_loss",
]
