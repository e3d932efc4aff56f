"""The spec folder (entry point `fusebench.benchmarks`): <id>.yaml specs, data/ and suites/."""
