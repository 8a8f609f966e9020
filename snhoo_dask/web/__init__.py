"""``snhoo-dask serve``: submit, watch and review jobs in a browser (Tornado, from distributed)."""
