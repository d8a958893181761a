"""On-demand speed and memory benchmarks; results go to reports/benchmarks/."""
