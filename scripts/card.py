"""Rules `make_card_<name>`: an optimizer's card from its battery's summaries."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import card, logs
from adamgen._io import open_netcdf

with logs.workflow_job(snakemake.log[0]):
    summaries = {name: open_netcdf(path, "summary", ())
                 for name, path in zip(snakemake.params.names, snakemake.input, strict=True)}
    out = snakemake.output
    card.write(snakemake.params.card, summaries, out.md, out.html, out.png, out.json)
