"""Rules `plot_*`: draw one figure, named by its output file, from the experiment's summary."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

import xarray as xr

from adamgen import figures, jobs

jobs.setup_logging(snakemake.log[0])
with xr.open_dataset(snakemake.input[0], engine="netcdf4") as summary:
    fig = figures.draw(Path(snakemake.output.png).stem, summary.load())
figures.save(fig, snakemake.output.png, snakemake.output.pdf)
