# Every run of an experiment combined along its grid dimensions: results/<experiment>/summary.nc.


rule aggregate:
    input:
        experiment_runs,
    output:
        f"{OUT}/{{experiment}}/summary.nc",
    log:
        f"{OUT}/logs/{{experiment}}/aggregate.log",
    benchmark:
        f"{OUT}/benchmarks/{{experiment}}/aggregate.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    resources:
        mem_mb=experiment_mem_mb,
        runtime=planner.MIN_RUNTIME,
    params:
        manifest=experiment_manifest,
    script:
        "../../scripts/aggregate.py"
