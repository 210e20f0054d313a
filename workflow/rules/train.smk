# One run file per grid point. The path holds the run's main settings and a hash of its whole
# resolved config, so a run is redone exactly when one of its own settings changes.
# With runs_per_job > 1, and for runs on a GPU whatever it is, runs sharing a lockstep program
# are trained together, one rule per group; a group may span seeds and data settings, and then
# reads several data files. Small programs go several to a job, trained one after the other
# (planner.training_jobs). Run files are marked update(): Snakemake never deletes a finished
# run before or after a job (a failed job restores it), and a job trains only the missing runs.


if not GROUPED:

    rule train:
        input:
            data=run_data,
            sources=run_sources,
        output:
            update(f"{planner.RESULTS}/runs/{{run}}.nc"),
        log:
            f"{planner.RESULTS}/logs/runs/{{run}}.log",
        benchmark:
            f"{planner.RESULTS}/benchmarks/runs/{{run}}.tsv"
        conda:
            "../../environment.yml"
        threads: 1
        resources:
            mem_mb=run_mem_mb,
            runtime=run_runtime,
            gpu=run_gpus,
        script:
            "../../scripts/train.py"

else:
    for group in LOCKSTEP:

        rule:
            name:
                f"train_{group.name}"
            input:
                data=group.data_paths,
                sources=group.sources,
            output:
                [update(path) for path in group.paths],
            log:
                f"{planner.RESULTS}/logs/train/{LOG_EXPERIMENT[group.paths[0]]}/{group.name}.log",
            benchmark:
                f"{planner.RESULTS}/benchmarks/lockstep/{group.name}.tsv"
            priority: group.priority  # the longest jobs first
            conda:
                "../../environment.yml"
            threads: planner.job_threads(group, TRAINING_JOBS, LOCAL_CORES)
            resources:
                **{
                    "mem_mb": group.memory_mb(),
                    "runtime": group.runtime(),
                    "gpu": int(group.runs[0].config.train.device.startswith("cuda")),
                }
                | TRAIN_RESOURCES,
            params:
                chunks=group.chunk_sizes,  # its lockstep groups, trained in turn
            script:
                "../../scripts/train.py"
