"""Rule `aggregate`: combine an experiment's run files into its summary."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import aggregate, logs

with logs.workflow_job(snakemake.log[0]):
    aggregate.save(aggregate.summarize(snakemake.params.manifest), snakemake.output[0])
