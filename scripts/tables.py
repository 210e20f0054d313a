"""Rule `make_tables`: final metrics, mean ± std over seeds, as CSV, Markdown and LaTeX."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import aggregate, logs, tables

with logs.workflow_job(snakemake.log[0]):
    summary = aggregate.load(snakemake.input[0])
    tables.write(summary, snakemake.output.csv, snakemake.output.md, snakemake.output.tex)
