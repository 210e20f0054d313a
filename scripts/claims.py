"""Rule `claims`: check every claim of the claims file against the summaries."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import claims, logs
from adamgen._io import open_netcdf

with logs.workflow_job(snakemake.log[0]):
    summaries = {name: open_netcdf(path, "summary", ())
                 for name, path in zip(snakemake.params.names, snakemake.input.summaries,
                                       strict=True)}
    rows = claims.evaluate(claims.load_claims(snakemake.input.claims), summaries,
                           snakemake.params.unavailable)
    claims.write(rows, snakemake.output.md, snakemake.output.csv, snakemake.output.html,
                 figures_root=Path(snakemake.output.md).parent)
