"""Judged benchmarks (Arena-Hard, MT-Bench, AlpacaEval 2, AlignBench): judge calls, verdicts and scoring formulas."""
