"""Training: the lag pretext task (encoder), downscalers, inpainters; checkpoints, resume.

One loop (:mod:`xatmodist.train._loop`) drives every trainer through a small
task object; typed settings (:mod:`xatmodist.train.config`) are the single
source of defaults for the keyword arguments, the command line and the recipe
files (:func:`fit`).  Needs only the core dependencies plus tqdm; works on any
CF-compliant dataset (numpy, dask, zarr, netCDF, GRIB via cfgrib).
"""

from ..evaluate import evaluate_encoder
from .analog import fit_analog_metric
from .downscaler import fit_downscaler
from .encoder import calibrate_alpha, fit_encoder, rank_loss
from .inpainter import fit_inpainter

__all__ = [
    "fit_encoder",
    "evaluate_encoder",
    "calibrate_alpha",
    "fit_downscaler",
    "fit_inpainter",
    "fit_analog_metric",
    "rank_loss",
]
