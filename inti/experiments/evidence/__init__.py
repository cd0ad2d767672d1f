"""The evidence experiment: the paper's claims at small scale on a laptop CPU, against tuned,
converged baselines, under decision rules committed before the run.

`python -m inti.experiments.evidence --out experiments/evidence` reruns it; its report is
`experiments/evidence/README.md`. `tasks` makes the data, `arms` and `models` the arms compared,
`cache` the per-seed image models and frozen outputs, `tuning` the pilots and the power plan,
`rules` the decision rules and the run's scope, `stats` their statistics, `run` trains and
measures one arm, `report` and `markdown` write the report, `timing` measures clips/s, and
`driver` runs it all.
"""
