# Tables and figures, each read from the experiment's summary alone.


rule make_tables:
    input:
        f"{ex.RESULTS}/{{experiment}}/summary.nc",
    output:
        csv=report(
            f"{ex.RESULTS}/{{experiment}}/tables/final.csv",
            caption="../report/table.rst",
            category="{experiment}",
            subcategory="tables",
        ),
        md=f"{ex.RESULTS}/{{experiment}}/tables/final.md",
        tex=f"{ex.RESULTS}/{{experiment}}/tables/final.tex",
    log:
        f"{ex.RESULTS}/logs/{{experiment}}/tables.log",
    benchmark:
        f"{ex.RESULTS}/benchmarks/{{experiment}}/tables.tsv"
    conda:
        "../../environment.yml"
    script:
        "../../scripts/tables.py"


rule plot_dynamics:
    input:
        f"{ex.RESULTS}/{{experiment}}/summary.nc",
    output:
        png=report(
            f"{ex.RESULTS}/{{experiment}}/figures/dynamics-{{optimizer}}.png",
            caption="../report/dynamics.rst",
            category="{experiment}",
            subcategory="feature learning and noise memorization",
        ),
        pdf=f"{ex.RESULTS}/{{experiment}}/figures/dynamics-{{optimizer}}.pdf",
    log:
        f"{ex.RESULTS}/logs/{{experiment}}/dynamics-{{optimizer}}.log",
    benchmark:
        f"{ex.RESULTS}/benchmarks/{{experiment}}/dynamics-{{optimizer}}.tsv"
    conda:
        "../../environment.yml"
    script:
        "../../scripts/plot.py"


rule plot_errors:
    input:
        f"{ex.RESULTS}/{{experiment}}/summary.nc",
    output:
        png=report(
            f"{ex.RESULTS}/{{experiment}}/figures/errors-{{optimizer}}.png",
            caption="../report/errors.rst",
            category="{experiment}",
            subcategory="errors",
        ),
        pdf=f"{ex.RESULTS}/{{experiment}}/figures/errors-{{optimizer}}.pdf",
    log:
        f"{ex.RESULTS}/logs/{{experiment}}/errors-{{optimizer}}.log",
    benchmark:
        f"{ex.RESULTS}/benchmarks/{{experiment}}/errors-{{optimizer}}.tsv"
    conda:
        "../../environment.yml"
    script:
        "../../scripts/plot.py"


rule plot_sweep:
    input:
        f"{ex.RESULTS}/{{experiment}}/summary.nc",
    output:
        png=report(
            f"{ex.RESULTS}/{{experiment}}/figures/test_error_vs_{{axis}}.png",
            caption="../report/sweep.rst",
            category="{experiment}",
            subcategory="sweeps",
        ),
        pdf=f"{ex.RESULTS}/{{experiment}}/figures/test_error_vs_{{axis}}.pdf",
    log:
        f"{ex.RESULTS}/logs/{{experiment}}/test_error_vs_{{axis}}.log",
    benchmark:
        f"{ex.RESULTS}/benchmarks/{{experiment}}/test_error_vs_{{axis}}.tsv"
    wildcard_constraints:
        axis="batch_size|weight_decay",
    conda:
        "../../environment.yml"
    script:
        "../../scripts/plot.py"


rule plot_heatmap:
    input:
        f"{ex.RESULTS}/{{experiment}}/summary.nc",
    output:
        png=report(
            f"{ex.RESULTS}/{{experiment}}/figures/heatmap_test_error.png",
            caption="../report/heatmap.rst",
            category="{experiment}",
            subcategory="sweeps",
        ),
        pdf=f"{ex.RESULTS}/{{experiment}}/figures/heatmap_test_error.pdf",
    log:
        f"{ex.RESULTS}/logs/{{experiment}}/heatmap_test_error.log",
    benchmark:
        f"{ex.RESULTS}/benchmarks/{{experiment}}/heatmap_test_error.tsv"
    conda:
        "../../environment.yml"
    script:
        "../../scripts/plot.py"
