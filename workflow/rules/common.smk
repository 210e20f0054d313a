# Configuration: validated against the schema, then every run of every experiment is expanded
# and validated by adamgen before any job is planned. Named input functions live here.
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from adamgen import experiments as ex
from adamgen import figures
from adamgen.errors import ConfigError

try:
    validate(config, "../schemas/config.schema.yaml")
    EXPERIMENTS = ex.plan(config)
except WorkflowError as err:
    raise WorkflowError(ex.explain_schema_error(err)) from None
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None

RUNS = {run.path: run for e in EXPERIMENTS.values() for run in e.runs}
LOCKSTEP = (
    ex.lockstep_groups(EXPERIMENTS, config["runs_per_job"])
    if config["runs_per_job"] > 1
    else []
)
DATASETS = {
    run.data_path: run for run in RUNS.values()
}  # one run stands for its data set


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    run=r"[a-z_]+/[^/]+",
    spec=r"[^/]+",
    seed=r"\d+",
    optimizer=r"[a-z_]+",


def _run(wildcards):
    return RUNS[f"{ex.RESULTS}/runs/{wildcards.run}.nc"]


def run_data(wildcards):
    return _run(wildcards).data_path


def run_mem_mb(wildcards):
    return ex.memory_mb(_run(wildcards).config)


def run_gpus(wildcards):
    return int(_run(wildcards).config.train.device.startswith("cuda"))


def dataset_config(wildcards):
    """Only what the data set depends on: its data settings and seed."""
    run = DATASETS[f"{ex.RESULTS}/data/{wildcards.spec}/seed{wildcards.seed}.nc"].config
    return {"seed": run.seed, "data": run.to_dict()["data"]}


def experiment_runs(wildcards):
    return [run.path for run in EXPERIMENTS[wildcards.experiment].runs]


def experiment_manifest(wildcards):
    return EXPERIMENTS[wildcards.experiment].manifest()


def experiment_outputs(name):
    base = f"{ex.RESULTS}/{name}"
    out = [f"{base}/summary.nc"]
    out += [f"{base}/tables/final.{suffix}" for suffix in ("csv", "md", "tex")]
    for figure in figures.names(EXPERIMENTS[name].axes):
        out += [f"{base}/figures/{figure}.png", f"{base}/figures/{figure}.pdf"]
    return out


def final_outputs():
    return [path for name in EXPERIMENTS for path in experiment_outputs(name)]
