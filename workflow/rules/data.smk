# One data set per (data settings, seed), shared by every optimizer and experiment that uses it.
# In grouped jobs (runs_per_job > 1, or runs on a GPU), data sets are drawn up to runs_per_job
# per job (rules data_<k>); their
# files are marked update() and a job writes only the missing ones.


if not GROUPED:

    rule dataset:
        output:
            f"{planner.RESULTS}/data/{{spec}}/seed{{seed}}.nc",
        log:
            f"{planner.RESULTS}/logs/data/{{spec}}/seed{{seed}}.log",
        benchmark:
            f"{planner.RESULTS}/benchmarks/data/{{spec}}/seed{{seed}}.tsv"
        priority: 1000  # before every training job (planner.LockstepGroup.priority)
        conda:
            "../../environment.yml"
        resources:
            mem_mb=dataset_mem_mb,
            runtime=planner.MIN_RUNTIME,
        params:
            datasets=dataset_config,
        script:
            "../../scripts/make_dataset.py"

else:
    for group in DATA_GROUPS:

        rule:
            name:
                f"data_{group.name}"
            output:
                [update(path) for path in group.paths],
            log:
                f"{planner.RESULTS}/logs/data/group{group.name}.log",
            benchmark:
                f"{planner.RESULTS}/benchmarks/data/group{group.name}.tsv"
            priority: 1000  # before every training job (planner.LockstepGroup.priority)
            conda:
                "../../environment.yml"
            resources:
                mem_mb=group.memory_mb(),
                runtime=planner.MIN_RUNTIME,
            params:
                datasets=group.specs(),
            script:
                "../../scripts/make_dataset.py"
