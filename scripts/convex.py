"""Rule `convex`: fit the linear model of E3 with each optimizer on one data set."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import convex, logs
from adamgen import data as datamod
from adamgen._io import write_netcdf, zlib

with logs.workflow_job(snakemake.log[0]):
    fit = convex.fit(datamod.load(snakemake.input.data),
                     convex.ConvexSettings(**snakemake.params.settings))
    write_netcdf(fit, snakemake.output[0], zlib(fit))
