# Tables and figures, each read from the experiment's summary alone.


rule make_tables:
    input:
        f"{OUT}/{{experiment}}/summary.nc",
    output:
        csv=report(
            f"{OUT}/{{experiment}}/tables/final.csv",
            caption="../report/table.rst",
            category="{experiment}",
            subcategory="tables",
        ),
        md=f"{OUT}/{{experiment}}/tables/final.md",
        tex=f"{OUT}/{{experiment}}/tables/final.tex",
    log:
        f"{OUT}/logs/{{experiment}}/tables.log",
    benchmark:
        f"{OUT}/benchmarks/{{experiment}}/tables.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    resources:
        mem_mb=experiment_mem_mb,
        runtime=planner.MIN_RUNTIME,
    script:
        "../../scripts/tables.py"


# One rule per kind of figure (adamgen.figures.FIGURES): plot_dynamics, plot_errors, ...
for kind in figures.FIGURES.values():

    rule:
        name:
            f"plot_{kind.name}"
        input:
            f"{OUT}/{{experiment}}/summary.nc",
        output:
            png=report(
                f"{OUT}/{{experiment}}/figures/{kind.stem}.png",
                caption=f"../report/{kind.caption}.rst",
                category="{experiment}",
                subcategory=kind.subcategory,
            ),
            pdf=f"{OUT}/{{experiment}}/figures/{kind.stem}.pdf",
        log:
            f"{OUT}/logs/{{experiment}}/{kind.stem}.log",
        benchmark:
            f"{OUT}/benchmarks/{{experiment}}/{kind.stem}.tsv"
        wildcard_constraints:
            **figure_wildcards(kind),
        localrule: True
        conda:
            "../../environment.yml"
        resources:
            mem_mb=experiment_mem_mb,
            runtime=planner.MIN_RUNTIME,
        script:
            "../../scripts/plot.py"
