# Configuration: validated against the schema, then every run of every experiment is expanded
# and validated by adamgen before any job is planned. Named input functions live here.
import os
import sys

sys.path.insert(
    0, workflow.basedir
)  # adamgen from this checkout, as the rule scripts take it

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from adamgen import battery, plan_cache, planner
from adamgen import figures
from adamgen.config import load_yaml, numbers
from adamgen.errors import AdamgenError, ConfigError
from adamgen.locks import clear_stale_locks, record_owner

if workflow.is_main_process:
    for line in clear_stale_locks():
        logger.info(f"adamgen: {line}")

try:
    for path in workflow.configfiles:
        planner.check_config_file(path)
    # 5e-5 is a number, as in every config adamgen reads (Snakemake's reader takes it as text)
    config.update(numbers(dict(config)))
    planner.outputs(config)  # its own message for a name (the schema's would be terser)
    validate(config, "../schemas/config.schema.yaml")
    EXPERIMENTS, UNAVAILABLE = planner.available(planner.plan(config))
    CONVEX = planner.plan_convex(config)
except WorkflowError as err:
    raise WorkflowError(planner.explain_schema_error(err)) from None
except ConfigError as err:  # a config key
    raise WorkflowError(f"invalid config: {err}") from None
except AdamgenError as err:  # a config file or an input file that cannot be read
    raise WorkflowError(f"bad input: {err}") from None

# `workflow.dryrun` reads the executor, which is not chosen yet while the Snakefile is read
DRY_RUN = (
    bool(workflow.output_settings and workflow.output_settings.dryrun)
    or workflow.dryrun
)

if workflow.is_main_process:
    # one line per reason (five CIFAR experiments missing one data folder: one line)
    for reason, names in planner.by_reason(UNAVAILABLE).items():
        logger.warning(f"adamgen: not planned ({', '.join(names)}): {reason}")
    if not DRY_RUN:
        # for the training jobs (plan_cache.planned_runs), anew at every start
        problem = plan_cache.save(config, EXPERIMENTS)
        if problem:
            logger.warning(f"adamgen: {problem}")

# the claims file: relative to the working directory, else to this checkout
CLAIMS = config["claims"]
if not os.path.isabs(CLAIMS) and not os.path.exists(CLAIMS):
    CLAIMS = os.path.join(workflow.basedir, CLAIMS)

# this config's summaries, tables, figures and claims: results/<name>/ (results/ unnamed);
# run files and data sets are shared by every config (content-addressed)
OUT = planner.outputs(config)
RUNS = {run.path: run for e in EXPERIMENTS.values() for run in e.runs}
# one job per run (rules `train`, `dataset`), or jobs of lockstep groups (`train_<group>`,
# `data_<k>`): with runs_per_job > 1, and always where runs go to a GPU in groups
GROUPED = config["runs_per_job"] > 1 or planner.any_device_groups(EXPERIMENTS)
# Only jobs with a file still missing get a rule: a job whose runs all exist is never planned,
# and its files, which no rule makes, are never touched (their summaries stay up to date).
# Every process (a cluster job too) defines the rule of a job it is to run, since its files
# are missing then; the packing follows from the config alone (planner.buckets).
LOCKSTEP = (
    planner.unfinished(
        planner.training_jobs(
            EXPERIMENTS,
            config["runs_per_job"],
            config["gpu_runs_per_job"],
            config["gpu_memory_gb"],
        )
    )
    if GROUPED
    else []
)
# the cores the training jobs share here (None: on a cluster, each job on a node of its own):
# a job's threads (planner.job_threads)
TRAINING_JOBS = len(LOCKSTEP)
# (resource_settings: workflow.cores raises where no --cores is given, as under --report;
# None there too)
LOCAL_CORES = (
    workflow.resource_settings.cores
    if workflow.resource_settings.nodes is None
    else None
)
DATASETS = {
    run.data_path: run.config for run in RUNS.values() if run.data_path
}  # one run stands for its data set (images read by the training job have none)
DATASETS |= {
    planner.data_path(run): run for c in CONVEX.values() for run in c.data_runs.values()
}
DATA_GROUPS = (
    planner.unfinished(planner.data_groups(DATASETS, config["runs_per_job"]))
    if GROUPED
    else []
)
# the experiment a training job's log is filed under: that of its first run
LOG_EXPERIMENT = {
    run.path: name for name, e in reversed(EXPERIMENTS.items()) for run in e.runs
}
# what --set-resources (or a profile's set-resources) gives rule `train` applies to every
# training rule, the grouped ones (train_<group>) too: e.g. a Slurm partition with GPUs
TRAIN_RESOURCES = {
    name: getattr(value, "raw", value)
    for name, value in workflow.resource_settings.overwrite_resources.get(
        "train", {}
    ).items()
}


wildcard_constraints:
    experiment="|".join(EXPERIMENTS) or "(?!)",
    convex="|".join(CONVEX) or "(?!)",
    run=r"[a-z_]+/[^/]+",
    spec=r"[^/]+",
    seed=r"\d+",
    fit=r"seed\d+-[0-9a-f]+",


def check_devices():
    """Stop before any job when training jobs ask for CUDA, the jobs run on this machine
    (Snakemake's local executor) and torch sees no GPU here."""
    wanted = planner.asks_for_cuda(EXPERIMENTS)
    plugin = workflow.executor_plugin
    if not wanted or plugin is None or plugin.name != "local":
        return
    import torch

    if not torch.cuda.is_available():
        raise WorkflowError(
            f"adamgen: {wanted} runs ask for a CUDA device (train.device: cuda, e.g. through "
            "config/gpu.yaml), but this machine has none (torch sees no GPU); run them where "
            "one is (a cluster profile such as profiles/slurm), or leave the GPU overlay out"
        )


def warn_devices_in_dry_run():
    """A dry run does not start the workflow (no `onstart`), so `check_devices` cannot stop
    it: where runs ask for CUDA and torch sees no GPU here, it says so in one line."""
    wanted = planner.asks_for_cuda(EXPERIMENTS)
    if not wanted or not DRY_RUN:
        return
    import torch

    if not torch.cuda.is_available():
        print(
            f"adamgen: warning: {wanted} runs ask for a CUDA device and torch sees no GPU on "
            "this machine: run here, the workflow stops before its first job; a cluster "
            "profile (profiles/slurm) sends them to nodes with one",
            file=sys.stderr,
        )


def no_rate_limit_here():
    """Jobs on this machine (Snakemake's local executor) are not rate limited.

    Snakemake's job rate limiter (--max-jobs-per-timespan, 100 per second by default) asks the
    scheduler to look again one timespan after every look it makes; a look started by a
    finished job starts one more such chain, so after N jobs there are N chains. On the paper
    config (about 280 jobs) the main process looked 10-28 times a second near the end, each
    look statting every ready job's inputs: a quarter to a half of one of the two cores the
    jobs were given. The timers also hold Snakemake's exit for up to one timespan. Locally
    the cores already bound the jobs; a cluster executor keeps its limit (profiles/slurm).
    """
    plugin, scheduler = workflow.executor_plugin, getattr(workflow, "scheduler", None)
    if (
        plugin is not None
        and plugin.name == "local"
        and hasattr(scheduler, "job_rate_limiter")
    ):
        scheduler.job_rate_limiter = None


def _run(wildcards):
    return RUNS[f"{planner.RESULTS}/runs/{wildcards.run}.nc"]


def run_data(wildcards):
    return _run(wildcards).data_path or []


def run_sources(wildcards):
    return planner.sources([_run(wildcards).config])


def run_mem_mb(wildcards):
    return planner.memory_mb(_run(wildcards).config)


def run_runtime(wildcards):
    return planner.LockstepGroup("run", (_run(wildcards),)).runtime()


def dataset_mem_mb(wildcards):
    run = DATASETS[f"{planner.RESULTS}/data/{wildcards.spec}/seed{wildcards.seed}.nc"]
    return planner.DataGroup("one", (run,)).memory_mb()


def experiment_mem_mb(wildcards):
    """An experiment's summary holds its run files' values a few times over."""
    return EXPERIMENTS[wildcards.experiment].memory_mb()


def run_gpus(wildcards):
    return int(_run(wildcards).config.train.device.startswith("cuda"))


def dataset_config(wildcards):
    """Only what the data set depends on: its data settings and seed."""
    run = DATASETS[f"{planner.RESULTS}/data/{wildcards.spec}/seed{wildcards.seed}.nc"]
    return [{"seed": run.seed, "data": run.to_dict()["data"]}]


def convex_data(wildcards):
    """The data set of a convex fit."""
    experiment = CONVEX[wildcards.convex]
    return planner.data_path(experiment.data_runs[experiment.seed_of(wildcards.fit)])


def experiment_runs(wildcards):
    return [run.path for run in EXPERIMENTS[wildcards.experiment].runs]


def experiment_manifest(wildcards):
    return EXPERIMENTS[wildcards.experiment].manifest()


def experiment_outputs(name):
    base = f"{OUT}/{name}"
    out = [f"{base}/summary.nc"]
    out += [f"{base}/tables/final.{suffix}" for suffix in ("csv", "md", "tex")]
    for figure in figures.names(EXPERIMENTS[name]):
        out += [f"{base}/figures/{figure}.png", f"{base}/figures/{figure}.pdf"]
    return out


def figure_wildcards(kind):
    """Each wildcard of a figure kind limited to the values its experiments use."""
    values = {}
    for experiment in EXPERIMENTS.values():
        for instance in kind.instances(experiment):
            for key, value in instance.items():
                values.setdefault(key, set()).add(value)
    return {k: "|".join(sorted(v)) or "(?!)" for k, v in values.items()}


def convex_outputs(name):
    base = f"{OUT}/{name}"
    return [
        f"{base}/summary.nc",
        f"{base}/figures/convex.png",
        f"{base}/figures/convex.pdf",
    ]


def summaries(wildcards=None):
    """Every experiment's summary, CNN and convex: what the claims are checked against."""
    return [e.summary_path for e in EXPERIMENTS.values()] + [
        c.summary_path for c in CONVEX.values()
    ]


def claims_figures(wildcards=None):
    """The PNG figures the claims name that this config makes: the claims page shows them as
    thumbnails (embedded, so that the report's copy of the page shows them too)."""
    if not config["claims"]:
        return []
    made = {
        path
        for name in EXPERIMENTS
        for path in experiment_outputs(name)
        if path.endswith(".png")
    }
    made |= {
        path
        for name in CONVEX
        for path in convex_outputs(name)
        if path.endswith(".png")
    }
    entries = load_yaml(CLAIMS).get("claims") or []  # checked by the claims job itself
    named = {
        f"{OUT}/{c['figure']}"
        for c in entries
        if isinstance(c, dict) and c.get("figure")
    }
    return sorted(named & made)


def claims_outputs():
    """The claims page, unless the config names no claims file (`claims: ""`: a card)."""
    if not config["claims"]:
        return []
    return [f"{OUT}/claims.{suffix}" for suffix in ("md", "csv", "html")]


# the config's optimizer cards (adamgen.battery): their experiments are in EXPERIMENTS
CARDS = battery.cards(config)


def card_experiments(card):
    """The card's experiments that are planned (all of its battery's)."""
    names = [battery.experiment(card["name"], test) for test in battery.TESTS]
    return [name for name in names if name in EXPERIMENTS]


def card_summaries(card):
    return [EXPERIMENTS[name].summary_path for name in card_experiments(card)]


def card_outputs():
    out = [
        f"{OUT}/{card['name']}/card.{suffix}"
        for card in CARDS
        for suffix in ("md", "html", "png", "json")
    ]
    if len(CARDS) >= 2:
        out += [f"{OUT}/atlas.{suffix}" for suffix in ("md", "csv", "png")]
    return out


def final_outputs():
    """Every file the workflow makes. Run files, data sets and convex fits are targets in their
    own right: Snakemake does not redo a missing intermediate file when everything downstream
    of it is up to date, and a run or data file deleted by hand must come back on the rerun.
    """
    # a card's experiments give their summaries to the card (their tables and figures are
    # there to be asked for by name)
    tested = {battery.experiment(c["name"], t) for c in CARDS for t in battery.TESTS}
    out = [
        path
        for name in EXPERIMENTS
        for path in (
            [EXPERIMENTS[name].summary_path]
            if name in tested
            else experiment_outputs(name)
        )
    ]
    out += [path for name in CONVEX for path in convex_outputs(name)]
    out += list(RUNS) + list(DATASETS)
    out += [c.fit_path(seed) for c in CONVEX.values() for seed in c.seeds]
    return out + claims_outputs() + card_outputs()
