"""Table 1 (time and memory of each hypergradient method against T), measured by the benchmark."""
