"""The suite's ruler: what the benchmarks measure with, kept apart from the code they measure.

- `scorer`: a float64 numpy transcription of docs/kernel.md (kernel and strategies) that shares no code with
  `marketsim_opt`.
- `references`: the frozen exact suprema of the suite's workloads (`frozen/*.json`) and the regret against them.
- `counting`: evaluations and host read-backs counted by the harness, which the package cannot switch off.

Nothing here imports `marketsim_opt` at module level (`counting` imports `marketsim_opt.strategies` only
while it installs its evaluation counter); `scorer` and `references` never import it.
"""
