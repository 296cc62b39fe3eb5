"""The one place for latitude/longitude grids: which dims, which way, how far apart, global.

Every function that needs the horizontal grid asks :func:`describe` (or the
small wrappers below, built from the same pieces): the model entry points
through :mod:`xatmodist._validate`, :func:`xatmodist.vorticity_divergence`,
the metrics and the trainers' ``FieldSource``.  So they agree on

* **discovery**: ``spatial_dims=`` or ``lat=``/``lon=`` if given (a dimension,
  or a 1-D coordinate, which stands for its dimension), else CF attributes
  via cf-xarray (standard_name, units, axis), else the usual names
  (``lat``, ``latitude``, ``y``, ...; ``guess_names=False`` turns that off);
* **orientation**: ``lat_descending`` (north to south, as ERA5 stores it);
* **spacing**: the median step in degrees; all steps must agree with it
  within ``rtol`` (default :data:`GRID_STEP_RTOL`, 2 %, so Gaussian grids
  pass) or :class:`~xatmodist.errors.GridError` says where they do not;
  longitudes are unwrapped first, so a box across the dateline (350, 355,
  0, 5) is one regular axis;
* **the seam rule**, once: longitudes with ``n`` points and step ``dlon`` are
  *global* if ``n * dlon`` is 360 degrees, or if ``(n - 1) * dlon`` is (then
  the last column repeats the first: ``has_seam``), both within
  ``GRID_STEP_RTOL * dlon``.  Callers drop the repeated column
  (:meth:`Grid.drop_seam`) and treat the ``n - 1`` distinct columns as
  periodic.  More than a full circle is a GridError.

Error messages say what was expected, what arrived and how to fix it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import GridError, InputError

__all__ = [
    "GRID_STEP_RTOL",
    "Grid",
    "describe",
    "spatial_dims",
    "grid_spacing",
    "is_global",
    "closure",
    "latlon_dims",
    "degrees",
    "cf_names",
]

#: relative spread of grid steps accepted as one spacing: Gaussian grids (ECHAM, IFS,
#: CMIP T63: latitude steps 1.850 to 1.865 deg, 0.8%) pass, real gaps do not
GRID_STEP_RTOL = 0.02

_LAT_NAMES = ("lat", "latitude", "y", "rlat", "nav_lat")
_LON_NAMES = ("lon", "longitude", "x", "rlon", "nav_lon")
_KEYS = (("latitude", "lat", _LAT_NAMES), ("longitude", "lon", _LON_NAMES))
#: how to name the dims, in the model functions (spatial_dims=) and the metrics (lat=, lon=)
SPATIAL_DIMS_FIX = "Pass spatial_dims=('lat_dim', 'lon_dim')."
LATLON_FIX = "Name the dimensions with lat='your_lat_dim', lon='your_lon_dim'."


@dataclass(frozen=True)
class Grid:
    """A latitude/longitude grid as :func:`describe` found it.

    Attributes
    ----------
    lat, lon : hashable
        The latitude and longitude dimensions.
    lat_coord, lon_coord : hashable or None
        Their coordinates (the dim itself, or a 1-D coordinate along it);
        None where the dim has no coordinate values.
    nlat, nlon : int
        Points along each dim (``nlon`` counts a repeated seam column).
    dlat, dlon : float
        Median step in degrees (> 0); NaN without coordinate or with 1 point.
    lat_descending : bool
        Latitudes run north to south (False without a latitude coordinate).
    is_global : bool
        The longitudes close the circle (see the module's seam rule).
    has_seam : bool
        The last longitude column repeats the first (e.g. 0 and 360):
        drop it with :meth:`drop_seam`.
    lat_deg, lon_deg : numpy.ndarray or None
        Coordinate values in degrees (float64; longitudes unwrapped).
    """

    lat: Hashable
    lon: Hashable
    lat_coord: Hashable | None
    lon_coord: Hashable | None
    nlat: int
    nlon: int
    dlat: float
    dlon: float
    lat_descending: bool
    is_global: bool
    has_seam: bool
    lat_deg: np.ndarray | None = field(default=None, repr=False, compare=False)
    lon_deg: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def nlon_unique(self) -> int:
        """Distinct longitude columns: ``nlon`` less a repeated seam column."""
        return self.nlon - int(self.has_seam)

    @property
    def width_deg(self) -> float:
        """Longitudes covered, degrees: 360 on a global grid, else ``nlon * dlon``."""
        return 360.0 if self.is_global else self.nlon * self.dlon

    def drop_seam(self, obj):
        """``obj`` (an xarray object on this grid) without the repeated seam column."""
        if not self.has_seam:
            return obj
        return obj.isel({self.lon: slice(0, self.nlon - 1)})

    def spacing_km(self, radius: float) -> float:
        """Geometric mean of the meridional and mid-latitude zonal spacing, km."""
        dy = radius * np.deg2rad(self.dlat)
        lat = self.lat_deg if self.lat_deg is not None else np.zeros(1)
        dx = radius * np.deg2rad(self.dlon) * np.cos(np.deg2rad(np.mean(lat)))
        return float(np.sqrt(dx * dy) / 1e3)


# --------------------------------------------------------------------------
# discovery


def cf_names(obj, key: str) -> list[Hashable]:
    """Names cf-xarray gives for ``key`` ('latitude', 'longitude' or 'time'), no repeats."""
    try:
        import cf_xarray  # noqa: F401  (registers .cf)

        found = obj.cf.coordinates.get(key, []) + obj.cf.axes.get(
            {"latitude": "Y", "longitude": "X", "time": "T"}[key], []
        )
    except (ImportError, KeyError, AttributeError, ValueError):
        found = []
    return list(dict.fromkeys(found))


def _given_axis(obj, key: str, kwarg: str, given: Hashable) -> tuple[Hashable, Hashable | None]:
    """(dim, coordinate) of a ``lat=``/``lon=`` argument: a dim, or a 1-D coordinate."""
    if given in obj.dims:
        return given, (given if given in obj.coords else None)
    if given in obj.coords:
        coord = obj.coords[given]
        if coord.ndim == 1:
            return coord.dims[0], given
        raise GridError(
            f"Expected {key} {given!r} to be a 1-D coordinate of a regular lat/lon grid, but it "
            f"has dimensions {coord.dims}. Curvilinear or projected grids must be regridded to "
            "a regular lat/lon grid first."
        )
    raise InputError(
        f"{kwarg}={given!r} is not a dimension or coordinate of the input: expected the "
        f"{key} dimension (or a 1-D coordinate along it) named {given!r}, but the input has "
        f"dimensions {list(obj.dims)} and coordinates {list(obj.coords) or 'none'}. Pass the "
        f"name of the {key} dimension with {kwarg}=..., or attach a coordinate with "
        ".assign_coords()."
    )


def _found_axis(
    obj, key: str, names: Sequence[str], guess_names: bool, how: str
) -> tuple[Hashable, Hashable | None]:
    """(dim, coordinate) of ``key`` from CF attributes, else (if allowed) the usual names."""
    cf = cf_names(obj, key)
    cands = [(c, c if c in obj.coords else None) for c in cf if c in obj.dims]
    cands += [
        (obj.coords[c].dims[0], c)
        for c in cf
        if c in obj.coords and obj.coords[c].ndim == 1 and c not in obj.dims
    ]
    if not cands and guess_names:
        cands = [(d, d if d in obj.coords else None) for d in obj.dims if str(d).lower() in names]
    if cands:
        return cands[0]
    units = "degrees_north" if key == "latitude" else "degrees_east"
    usual = " or a usual name" if guess_names else ""
    raise InputError(
        f"Could not find the {key} dimension: none of dims {list(obj.dims)} (coordinates "
        f"{list(obj.coords) or 'none'}) has CF attributes (standard_name={key!r} or units "
        f"{units!r}){usual}. {how}"
    )


def _find(
    obj,
    spatial: Sequence[Hashable] | None,
    lat: Hashable | None,
    lon: Hashable | None,
    guess_names: bool,
    how: str,
) -> tuple[tuple[Hashable, Hashable | None], tuple[Hashable, Hashable | None]]:
    """((lat dim, lat coord), (lon dim, lon coord)) of ``obj``."""
    if spatial is not None:
        dims = tuple(spatial)
        if len(dims) != 2 or any(d not in obj.dims for d in dims):
            raise InputError(
                f"spatial_dims must name two dimensions of the input (latitude, longitude); "
                f"got {dims!r}, the input has dims {tuple(obj.dims)!r}."
            )
        lat, lon = dims
    out = []
    for (key, kwarg, names), given in zip(_KEYS, (lat, lon), strict=True):
        if given is not None:
            out.append(_given_axis(obj, key, kwarg, given))
        else:
            out.append(_found_axis(obj, key, names, guess_names, how))
    if out[0][0] == out[1][0]:
        raise InputError(
            f"Latitude and longitude resolved to the same dimension {out[0][0]!r}; pass "
            "distinct names with lat=... and lon=... (or spatial_dims=(lat, lon))."
        )
    return out[0], out[1]


def spatial_dims(obj, spatial_dims: Sequence[Hashable] | None = None) -> tuple[Hashable, Hashable]:
    """Find the (latitude, longitude) dimensions of ``obj``.

    Uses ``spatial_dims`` if given, else CF attributes via cf-xarray
    (standard_name, units, axis), else common names.
    """
    (lat, _), (lon, _) = _find(obj, spatial_dims, None, None, True, SPATIAL_DIMS_FIX)
    return lat, lon


def latlon_dims(
    da, *, lat: Hashable | None = None, lon: Hashable | None = None
) -> tuple[Hashable, Hashable]:
    """The (latitude, longitude) dimensions of ``da`` for ``lat=``/``lon=`` arguments."""
    (lat, _), (lon, _) = _find(da, None, lat, lon, True, LATLON_FIX)
    return lat, lon


# --------------------------------------------------------------------------
# coordinate values and spacing


def degrees(obj, name: Hashable, *, kind: str) -> np.ndarray:
    """Values (float64, degrees) of the 1-D coordinate ``name`` (``kind``: latitude/longitude).

    InputError without a coordinate; GridError if it is not numbers in
    degrees, not finite, or (latitudes) outside [-90, 90].
    """
    if name not in obj.coords:
        raise InputError(
            f"The {kind} dimension {name!r} has no coordinate values; assign them in degrees, "
            f"e.g. da.assign_coords({name}=np.linspace(...))."
        )
    coord = obj.coords[name]
    units = coord.attrs.get("units")
    if units is not None and "deg" not in str(units).lower():
        cf_units = "degrees_north" if kind == "latitude" else "degrees_east"
        raise GridError(
            f"Expected {kind} {name!r} in degrees, but its units are {units!r}. Convert it to "
            f"degrees (e.g. with np.rad2deg) and set its units to {cf_units!r}."
        )
    values = np.asarray(coord.values)
    if not np.issubdtype(values.dtype, np.number):
        raise GridError(
            f"Expected {kind} {name!r} to hold numbers (degrees), but its dtype is {values.dtype}."
        )
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise GridError(f"Expected finite {kind} values, but {name!r} contains NaN or inf.")
    if kind == "latitude" and np.any(np.abs(values) > 90.0 + 1e-6):
        raise GridError(
            f"Expected latitudes within [-90, 90] degrees, but {name!r} spans "
            f"[{values.min():g}, {values.max():g}]. Check that it is latitude in degrees, or "
            "name the latitude with lat=... (spatial_dims=... in the model functions)."
        )
    if kind == "longitude" and values.size > 1:
        values = np.unwrap(values, period=360.0)
    return values


def axis_step(values: np.ndarray, name: Hashable, rtol: float = GRID_STEP_RTOL) -> float:
    """The median step (signed, degrees) of a monotonic axis whose steps agree within ``rtol``.

    The tolerance adds the rounding of float32 coordinates to ``rtol * |step|``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise GridError(
            f"Coordinate {name!r} must be 1-D with at least 2 points; got shape {values.shape}."
        )
    d = np.diff(values)
    step = float(np.median(d))
    tol = rtol * abs(step) + 1e-6 + 8 * np.finfo(np.float32).eps * float(np.max(np.abs(values)))
    if step == 0 or np.max(np.abs(d - step)) > tol:
        gauss = ", as on Gaussian grids" if rtol >= GRID_STEP_RTOL else "; not Gaussian grids"
        raise GridError(
            f"Coordinate {name!r} is not a monotonic grid with near-uniform steps (steps from "
            f"{d.min():.4g} to {d.max():.4g}; accepted: within {rtol * 100:g}% of the median"
            f"{gauss}; first values {np.round(values[:5], 4).tolist()}). Regrid to a regular "
            f"latitude/longitude grid first (e.g. with .interp()), or sort it "
            f"(.sortby({name!r})) if it is only out of order."
        )
    return step


def _closure(lon_deg: np.ndarray, step: float, name: Hashable) -> tuple[bool, bool]:
    """(is_global, has_seam) of unwrapped longitudes with step ``step``: the seam rule."""
    n, s = lon_deg.size, abs(step)
    tol = GRID_STEP_RTOL * s
    if abs(n * s - 360.0) <= tol:
        return True, False
    if n >= 3 and abs((n - 1) * s - 360.0) <= tol:
        return True, True
    if n * s > 360.0 + tol:
        raise GridError(
            f"Longitude {name!r} covers {n * s:g} degrees, more than a full circle. "
            f"Select one circle, e.g. da.isel({{{name!r}: slice(0, {round(360.0 / s)})}}) "
            "(360/dlon points)."
        )
    return False, False


def grid_spacing(obj, lat: Hashable, lon: Hashable) -> tuple[float, float]:
    """(dlat, dlon) in degrees; NaN where a dim has no coordinate."""
    out = []
    for d, kind in ((lat, "latitude"), (lon, "longitude")):
        if d in obj.coords:
            out.append(abs(axis_step(degrees(obj, d, kind=kind), d)))
        else:
            out.append(float("nan"))
    return out[0], out[1]


def closure(obj, lon: Hashable) -> tuple[bool, bool]:
    """(is_global, has_seam) of the longitude dim ``lon`` of ``obj`` (the seam rule).

    Both False where ``lon`` has no coordinate or a single point.
    """
    if lon not in obj.coords or obj.coords[lon].size < 2:
        return False, False
    x = degrees(obj, lon, kind="longitude")
    return _closure(x, axis_step(x, lon), lon)


def is_global(obj, lon: Hashable) -> bool:
    """True if the longitudes close the circle, with or without a seam column (the seam rule)."""
    return closure(obj, lon)[0]


# --------------------------------------------------------------------------
# the whole grid


def describe(
    obj,
    spatial_dims: Sequence[Hashable] | None = None,
    *,
    lat: Hashable | None = None,
    lon: Hashable | None = None,
    rtol: float = GRID_STEP_RTOL,
    guess_names: bool = True,
    require_coords: bool = False,
    how: str | None = None,
) -> Grid:
    """The latitude/longitude grid of an xarray object.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        The data.
    spatial_dims : (lat, lon), optional
        The two dims, as the model functions take them.
    lat, lon : hashable, optional
        Either dim (or a 1-D coordinate along it), as the metrics take them.
    rtol : float, default GRID_STEP_RTOL
        Accepted relative spread of the steps (finite differences ask for less).
    guess_names : bool, default True
        Also find dims by their usual names when no CF attribute says.
    require_coords : bool, default False
        Raise InputError when a dim has no coordinate (else its step is NaN).
    how : str, optional
        How to name the dims, appended to the "could not find" message
        (default :data:`LATLON_FIX`; the model functions' is :data:`SPATIAL_DIMS_FIX`).

    Returns
    -------
    Grid

    Raises
    ------
    InputError
        Dims not found or not given right; a coordinate missing (``require_coords``).
    GridError
        Coordinates not 1-D, not in degrees, not finite, latitudes outside
        [-90, 90], steps not near-uniform, or more than a full circle.
    """
    how = LATLON_FIX if how is None else how
    (ydim, ycoord), (xdim, xcoord) = _find(obj, spatial_dims, lat, lon, guess_names, how)
    vals, steps = [], []
    for dim, coord, kind in ((ydim, ycoord, "latitude"), (xdim, xcoord, "longitude")):
        if coord is None and require_coords:
            degrees(obj, dim, kind=kind)  # raises: no coordinate values
        x = degrees(obj, coord, kind=kind) if coord is not None else None
        vals.append(x)
        steps.append(axis_step(x, coord, rtol) if x is not None and x.size > 1 else float("nan"))
    glob, seam = (False, False)
    if vals[1] is not None and vals[1].size > 1:
        glob, seam = _closure(vals[1], steps[1], xcoord)
    return Grid(
        lat=ydim,
        lon=xdim,
        lat_coord=ycoord,
        lon_coord=xcoord,
        nlat=int(obj.sizes[ydim]),
        nlon=int(obj.sizes[xdim]),
        dlat=abs(steps[0]),
        dlon=abs(steps[1]),
        lat_descending=bool(vals[0] is not None and vals[0].size > 1 and vals[0][0] > vals[0][-1]),
        is_global=glob,
        has_seam=seam,
        lat_deg=vals[0],
        lon_deg=vals[1],
    )
