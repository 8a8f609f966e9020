"""snhoo-dask: turn folders of videos into still images, one Dask task per video."""

__version__ = "0.1.0"
