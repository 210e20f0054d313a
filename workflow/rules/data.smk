# One data set per (data settings, seed), shared by every optimizer and experiment that uses it.


rule dataset:
    output:
        f"{ex.RESULTS}/data/{{spec}}/seed{{seed}}.nc",
    log:
        f"{ex.RESULTS}/logs/data/{{spec}}/seed{{seed}}.log",
    benchmark:
        f"{ex.RESULTS}/benchmarks/data/{{spec}}/seed{{seed}}.tsv"
    conda:
        "../../environment.yml"
    params:
        dataset=dataset_config,
    script:
        "../../scripts/make_dataset.py"
