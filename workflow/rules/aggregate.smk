# Every run of an experiment combined along its grid dimensions: results/<experiment>/summary.nc.


rule aggregate:
    input:
        experiment_runs,
    output:
        f"{planner.RESULTS}/{{experiment}}/summary.nc",
    log:
        f"{planner.RESULTS}/logs/{{experiment}}/aggregate.log",
    benchmark:
        f"{planner.RESULTS}/benchmarks/{{experiment}}/aggregate.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    params:
        manifest=experiment_manifest,
    script:
        "../../scripts/aggregate.py"
