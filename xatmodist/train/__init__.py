"""Training: the lag pretext task (encoder); checkpoints, resume, evaluation.

Needs only the core dependencies plus tqdm; works on any CF-compliant dataset
(numpy, dask, zarr, netCDF, GRIB via cfgrib).
"""

from .downscaler import fit_downscaler
from .encoder import calibrate_alpha, evaluate_encoder, fit_encoder

__all__ = ["fit_encoder", "evaluate_encoder", "calibrate_alpha", "fit_downscaler"]
