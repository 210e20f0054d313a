"""Rule `make_tables`: final metrics, mean ± std over seeds, as CSV, Markdown and LaTeX."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

import xarray as xr

from adamgen import jobs, tables

jobs.setup_logging(snakemake.log[0])
with xr.open_dataset(snakemake.input[0], engine="netcdf4") as summary:
    tables.write(summary.load(), snakemake.output.csv, snakemake.output.md, snakemake.output.tex)
