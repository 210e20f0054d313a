"""Rule `train`: train one run from its data set and write its run file."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import jobs
from adamgen.config import parse_run_config

jobs.setup_logging(snakemake.log[0])
jobs.train_to_files([parse_run_config(snakemake.params.run)], [snakemake.output[0]],
                    [snakemake.input.data], threads=snakemake.threads, progress_every=5)
