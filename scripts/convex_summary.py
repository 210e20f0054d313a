"""Rule `convex_summary`: every seed's convex fit along a seed axis."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

import xarray as xr

from adamgen import convex, jobs
from adamgen._io import write_netcdf, zlib

jobs.setup_logging(snakemake.log[0])
fits = {}
for seed, path in zip(snakemake.params.seeds, snakemake.input, strict=True):
    with xr.open_dataset(path, engine="netcdf4") as ds:
        fits[seed] = ds.load()
summary = convex.summarize(fits, snakemake.wildcards.convex, snakemake.params.description)
write_netcdf(summary, snakemake.output[0], zlib(summary))
