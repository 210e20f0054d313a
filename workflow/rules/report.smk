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
            f"{ex.RESULTS}/{{experiment}}/summary.nc",
        output:
            png=report(
                f"{ex.RESULTS}/{{experiment}}/figures/{kind.stem}.png",
                caption=f"../report/{kind.caption}.rst",
                category="{experiment}",
                subcategory=kind.subcategory,
            ),
            pdf=f"{ex.RESULTS}/{{experiment}}/figures/{kind.stem}.pdf",
        log:
            f"{ex.RESULTS}/logs/{{experiment}}/{kind.stem}.log",
        benchmark:
            f"{ex.RESULTS}/benchmarks/{{experiment}}/{kind.stem}.tsv"
        wildcard_constraints:
            **figure_wildcards(kind),
        localrule: True
        conda:
            "../../environment.yml"
        script:
            "../../scripts/plot.py"
