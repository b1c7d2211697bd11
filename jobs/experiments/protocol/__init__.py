"""The growth-measurement harness (jobs/experiments/compare.sh, docs/experiments.md): the
protocol's plan, its resumable queue of runs, the analysis and the report."""
