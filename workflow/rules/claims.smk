# The convex counterpart (E3, docs/science.md §6) and the claims report checked against every summary.


rule convex:
    input:
        data=lambda w: ex.data_path(CONVEX[w.convex].data_runs[int(w.seed)]),
    output:
        update(f"{ex.RESULTS}/{{convex}}/convex/seed{{seed}}.nc"),
    log:
        f"{ex.RESULTS}/logs/{{convex}}/convex-seed{{seed}}.log",
    benchmark:
        f"{ex.RESULTS}/benchmarks/{{convex}}/convex-seed{{seed}}.tsv"
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
        f"{ex.RESULTS}/{{convex}}/summary.nc",
    log:
        f"{ex.RESULTS}/logs/{{convex}}/summary.log",
    benchmark:
        f"{ex.RESULTS}/benchmarks/{{convex}}/summary.tsv"
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
        f"{ex.RESULTS}/{{convex}}/summary.nc",
    output:
        png=report(
            f"{ex.RESULTS}/{{convex}}/figures/convex.png",
            caption="../report/convex.rst",
            category="{convex}",
            subcategory="convex counterpart",
        ),
        pdf=f"{ex.RESULTS}/{{convex}}/figures/convex.pdf",
    log:
        f"{ex.RESULTS}/logs/{{convex}}/convex-figure.log",
    benchmark:
        f"{ex.RESULTS}/benchmarks/{{convex}}/convex-figure.tsv"
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
        md=f"{ex.RESULTS}/claims.md",
        csv=f"{ex.RESULTS}/claims.csv",
        html=report(
            f"{ex.RESULTS}/claims.html",
            caption="../report/claims.rst",
            category="0 · claims",
            labels={"table": "claims of the papers, checked"},
        ),
    log:
        f"{ex.RESULTS}/logs/claims.log",
    benchmark:
        f"{ex.RESULTS}/benchmarks/claims.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    params:
        names=list(EXPERIMENTS) + list(CONVEX),
        unavailable=UNAVAILABLE,
    script:
        "../../scripts/claims.py"
