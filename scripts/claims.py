"""Rule `claims`: check every claim of the claims file against the summaries."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

import xarray as xr

from adamgen import claims, jobs

jobs.setup_logging(snakemake.log[0])
summaries = {}
for name, path in zip(snakemake.params.names, snakemake.input.summaries, strict=True):
    with xr.open_dataset(path, engine="netcdf4") as ds:
        summaries[name] = ds.load()
rows = claims.evaluate(claims.load_claims(snakemake.input.claims), summaries)
claims.write(rows, snakemake.output.md, snakemake.output.csv, snakemake.output.html)
