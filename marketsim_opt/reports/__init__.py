"""What people look at rather than read: profiles, memory flame graphs and the quality-versus-speed report.

- `profiling`: a workload under cProfile, tuna's icicle view, the share of time in kernel / read-backs / the rest;
- `memory`: a workload under memray, its flame graph and the peak;
- `tradeoff`: regret against time per optimization, with the Pareto front;
- `kernel_scaling`: per-evaluation cost against `N`, sequential against batched;
- `report`: all of the above for every method x budget, as pictures, CSV, markdown and one HTML page.
- `oos_stats`: out-of-sample profit (`marketsim_opt.oos`) compared with arch's bootstrap, SPA and MCS, and its plot;

Each writes one output folder, replaced whole only when everything in it was written.
Nothing here is imported by `import marketsim_opt` (matplotlib, tuna, memray and arch load on use).
"""
