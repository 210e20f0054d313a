# Tables and figures, each read from the experiment's summary alone.


rule make_tables:
    input:
        f"{planner.RESULTS}/{{experiment}}/summary.nc",
    output:
        csv=report(
            f"{planner.RESULTS}/{{experiment}}/tables/final.csv",
            caption="../report/table.rst",
            category="{experiment}",
            subcategory="tables",
        ),
        md=f"{planner.RESULTS}/{{experiment}}/tables/final.md",
        tex=f"{planner.RESULTS}/{{experiment}}/tables/final.tex",
    log:
        f"{planner.RESULTS}/logs/{{experiment}}/tables.log",
    benchmark:
        f"{planner.RESULTS}/benchmarks/{{experiment}}/tables.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    script:
        "../../scripts/tables.py"


# One rule per kind of figure (adamgen.figures.FIGURES): plot_dynamics, plot_errors, ...
for kind in figures.FIGURES.values():

    rule:
        name:
            f"plot_{kind.name}"
        input:
            f"{planner.RESULTS}/{{experiment}}/summary.nc",
        output:
            png=report(
                f"{planner.RESULTS}/{{experiment}}/figures/{kind.stem}.png",
                caption=f"../report/{kind.caption}.rst",
                category="{experiment}",
                subcategory=kind.subcategory,
            ),
            pdf=f"{planner.RESULTS}/{{experiment}}/figures/{kind.stem}.pdf",
        log:
            f"{planner.RESULTS}/logs/{{experiment}}/{kind.stem}.log",
        benchmark:
            f"{planner.RESULTS}/benchmarks/{{experiment}}/{kind.stem}.tsv"
        wildcard_constraints:
            **figure_wildcards(kind),
        localrule: True
        conda:
            "../../environment.yml"
        script:
            "../../scripts/plot.py"
