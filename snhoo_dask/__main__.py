"""``python -m snhoo_dask`` runs the ``snhoo-dask`` command (for when the script is not on PATH)."""

from .cli import entry

if __name__ == "__main__":
    entry()
