# The convex counterpart (E3, docs/science.md §6) and the claims report checked against every summary.


rule convex:
    input:
        data=lambda w: planner.data_path(CONVEX[w.convex].data_runs[int(w.seed)]),
    output:
        update(f"{OUT}/{{convex}}/convex/seed{{seed}}.nc"),
    log:
        f"{OUT}/logs/{{convex}}/convex-seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{convex}}/convex-seed{{seed}}.tsv"
    conda:
        "../../environment.yml"
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
    script:
        "../../scripts/plot.py"


rule claims:
    input:
        claims=CLAIMS,
        summaries=summaries,
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
    params:
        names=list(EXPERIMENTS) + list(CONVEX),
        unavailable=UNAVAILABLE,
    script:
        "../../scripts/claims.py"
