# Optimizer cards (adamgen card; adamgen/card.py): each card's battery is experiments of the
# plan (card_<name>_<test>); its card is written from their summaries, and with two or more
# cards the atlas sets them side by side.


for card in CARDS:

    rule:
        name:
            f"make_card_{card['name']}"
        input:
            card_summaries(card),
        output:
            md=f"{OUT}/{card['name']}/card.md",
            html=f"{OUT}/{card['name']}/card.html",
            png=f"{OUT}/{card['name']}/card.png",
            json=f"{OUT}/{card['name']}/card.json",
        log:
            f"{OUT}/logs/cards/{card['name']}.log",
        benchmark:
            f"{OUT}/benchmarks/cards/{card['name']}.tsv"
        localrule: True
        conda:
            "../../environment.yml"
        resources:
            mem_mb=2000,
            runtime=planner.MIN_RUNTIME,
        params:
            card=card,
            names=card_experiments(card),
        script:
            "../../scripts/card.py"


if len(CARDS) >= 2:

    rule make_atlas:
        input:
            [f"{OUT}/{card['name']}/card.json" for card in CARDS],
        output:
            md=f"{OUT}/atlas.md",
            csv=f"{OUT}/atlas.csv",
            png=f"{OUT}/atlas.png",
        log:
            f"{OUT}/logs/atlas.log",
        benchmark:
            f"{OUT}/benchmarks/atlas.tsv"
        localrule: True
        conda:
            "../../environment.yml"
        resources:
            mem_mb=1000,
            runtime=planner.MIN_RUNTIME,
        script:
            "../../scripts/atlas.py"
