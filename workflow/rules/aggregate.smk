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
    params:
        manifest=experiment_manifest,
    script:
        "../../scripts/aggregate.py"
