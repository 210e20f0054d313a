# The convex counterpart (E3, docs/science.md §6) and the claims report checked against every summary.


# Fit files are content-addressed (planner.ConvexExperiment.fit_path): changed settings give
# new files, and a finished fit is kept as a finished run is.
rule convex:
    input:
        data=convex_data,
    output:
        update(f"{OUT}/{{convex}}/convex/{{fit}}.nc"),
    log:
        f"{OUT}/logs/{{convex}}/convex-{{fit}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{convex}}/convex-{{fit}}.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=lambda w: CONVEX[w.convex].memory_mb(),
        runtime=lambda w: CONVEX[w.convex].runtime(),
    params:
        settings=lambda w: CONVEX[w.convex].settings,
    script:
        "../../scripts/convex.py"


rule convex_summary:
    input:
        lambda w: [CONVEX[w.convex].fit_path(s) for s in CONVEX[w.convex].seeds],
    output:
        f"{OUT}/{{convex}}/summary.nc",
    log:
        f"{OUT}/logs/{{convex}}/summary.log",
    benchmark:
        f"{OUT}/benchmarks/{{convex}}/summary.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1000,
        runtime=planner.MIN_RUNTIME,
    params:
        seeds=lambda w: CONVEX[w.convex].seeds,
        description=lambda w: CONVEX[w.convex].description,
    script:
        "../../scripts/convex_summary.py"


rule plot_convex:
    input:
        f"{OUT}/{{convex}}/summary.nc",
    output:
        png=report(
            f"{OUT}/{{convex}}/figures/convex.png",
            caption="../report/convex.rst",
            category="{convex}",
            subcategory="convex counterpart",
        ),
        pdf=f"{OUT}/{{convex}}/figures/convex.pdf",
    log:
        f"{OUT}/logs/{{convex}}/convex-figure.log",
    benchmark:
        f"{OUT}/benchmarks/{{convex}}/convex-figure.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1000,
        runtime=planner.MIN_RUNTIME,
    script:
        "../../scripts/plot.py"


if config["claims"]:  # a card's config names none (claims: "")

    rule claims:
        input:
            claims=CLAIMS,
            summaries=summaries,
            figures=claims_figures,
        output:
            md=f"{OUT}/claims.md",
            csv=f"{OUT}/claims.csv",
            html=report(
                f"{OUT}/claims.html",
                caption="../report/claims.rst",
                category="0 · claims",
                labels={"table": "claims of the papers, checked"},
            ),
        log:
            f"{OUT}/logs/claims.log",
        benchmark:
            f"{OUT}/benchmarks/claims.tsv"
        localrule: True
        conda:
            "../../environment.yml"
        resources:
            mem_mb=2000,
            runtime=planner.MIN_RUNTIME,
        params:
            names=list(EXPERIMENTS) + list(CONVEX),
            unavailable=UNAVAILABLE,
        script:
            "../../scripts/claims.py"
