"""Rule `dataset`: generate one data set (training and test split) as NetCDF."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import data, jobs
from adamgen.config import parse_run_config

jobs.setup_logging(snakemake.log[0])
run = parse_run_config(snakemake.params.run)
data.save(data.generate(run.data, run.seed), snakemake.output[0])
