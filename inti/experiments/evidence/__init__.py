"""The evidence experiment: a small-scale replication of the paper's claims on a laptop CPU.

`python -m inti.experiments.evidence --out experiments/evidence` reruns it; its report is
`experiments/evidence/README.md`. `tasks` makes the data, `variants` the models compared,
`stats` the decision rules' statistics, `run` trains and measures, `report` writes the report.
"""
