"""Rule `dataset`: generate one data set (training and test split) as NetCDF."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import data, logs
from adamgen.config import parse_section

with logs.workflow_job(snakemake.log[0]):
    spec = snakemake.params.dataset
    data.save(data.generate(parse_section(spec["data"], "data"), spec["seed"]),
              snakemake.output[0])
