# adamgen: a grid of runs -> datasets -> trained run files -> summaries -> tables and figures.
# Read top to bottom: configuration, then one include per stage. See README.md and config/README.md.
from snakemake.utils import min_version

min_version("8.0")


# The default grid; a --configfile given on the command line replaces it (Snakemake would
# otherwise merge the two, running the default experiments as well).
if not config:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


warn_devices_in_dry_run()  # the dry run of a GPU config on a machine without one says so


onstart:
    # which lock files are this process's, so that a later run can remove them (and only
    # them) if this process is killed hard
    record_owner(list(workflow.persistence._lockfile.values()))
    check_devices()  # GPU jobs on a machine without one: one line now, not failed jobs later
    no_rate_limit_here()  # a local run's scheduler looks when a job ends, not on timers


# Light jobs that read one summary (or a handful of files) are marked `localrule: True`: they
# run where Snakemake runs, also under a cluster executor. Only data sets, training and convex
# fits go to the cluster.
rule all:
    default_target: True
    input:
        final_outputs(),
    localrule: True
    resources:
        mem_mb=100,
        runtime=1,


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/card.smk"
