"""Rules `train` and `train_<group>`: train the missing runs among the outputs, in lockstep."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import jobs, logs, planner

with logs.workflow_job(snakemake.log[0]):
    runs = planner.planned_runs(snakemake.config)
    outs = list(snakemake.output)
    jobs.train_missing({p: runs[p].config for p in outs}, outs,
                       {p: runs[p].data_path for p in outs}, threads=snakemake.threads,
                       progress_every=5, chunks=snakemake.params.get("chunks"))
