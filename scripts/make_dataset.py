"""Rules `dataset` and `data_<k>`: draw the data sets (training and test split) whose files are
missing, and write them as NetCDF."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import data, datafile, logs
from adamgen.config import parse_section

with logs.workflow_job(snakemake.log[0]):
    for spec, path in zip(snakemake.params.datasets, snakemake.output, strict=True):
        if not Path(path).exists():  # update(): a data set already there is kept as it is
            datafile.save(data.generate(parse_section(spec["data"], "data"), spec["seed"]), path)
