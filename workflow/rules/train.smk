# One run file per grid point. The path holds the run's main settings and a hash of its whole
# resolved config, so a run is redone exactly when one of its own settings changes.


rule train:
    input:
        data=run_data,
    output:
        f"{ex.RESULTS}/runs/{{run}}.nc",
    log:
        f"{ex.RESULTS}/logs/runs/{{run}}.log",
    benchmark:
        f"{ex.RESULTS}/benchmarks/runs/{{run}}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=run_mem_mb,
        gpu=run_gpus,
    params:
        run=run_config,
    script:
        "../../scripts/train.py"
