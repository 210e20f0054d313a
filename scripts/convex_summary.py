"""Rule `convex_summary`: every seed's convex fit along a seed axis."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import convex, logs
from adamgen._io import open_netcdf, write_netcdf, zlib

with logs.workflow_job(snakemake.log[0]):
    fits = {seed: open_netcdf(path, "convex fit", ("distance", "weights_final"))
            for seed, path in zip(snakemake.params.seeds, snakemake.input, strict=True)}
    summary = convex.summarize(fits, snakemake.wildcards.convex, snakemake.params.description)
    write_netcdf(summary, snakemake.output[0], zlib(summary))
