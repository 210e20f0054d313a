"""Rule `make_atlas`: every card of the config side by side, a table and a figure."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # adamgen from this checkout

from adamgen import card, logs

with logs.workflow_job(snakemake.log[0]):
    cards = [json.loads(Path(path).read_text()) for path in snakemake.input]
    out = snakemake.output
    card.write_atlas(cards, out.md, out.csv, out.png)
