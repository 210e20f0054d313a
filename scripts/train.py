"""Rules `train` and `train_<group>`: train the missing runs among the outputs, in lockstep."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import jobs, logs, plan_cache

with logs.workflow_job(snakemake.log[0]):
    outs = list(snakemake.output)
    runs = plan_cache.planned_runs(snakemake.config, outs)
    jobs.train_missing(runs, outs, threads=snakemake.threads,
                       progress_every=5, chunks=snakemake.params.get("chunks"))
