"""Rule `convex`: fit the linear model of E3 with each optimizer on one data set."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import logs
from adamgen.jobs import convex_job

with logs.workflow_job(snakemake.log[0]):
    convex_job(snakemake.input.data, snakemake.params.settings, snakemake.output[0])
