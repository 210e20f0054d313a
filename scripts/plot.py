"""Rules `plot_*`: draw one figure, named by its output file, from the experiment's summary."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import figures, logs
from adamgen._io import open_netcdf

with logs.workflow_job(snakemake.log[0]):
    summary = open_netcdf(snakemake.input[0], "summary", ())
    figures.save(figures.draw(Path(snakemake.output.png).stem, summary),
                 snakemake.output.png, snakemake.output.pdf)
