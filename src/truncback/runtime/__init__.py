"""What every experiment run shares, written once: the device, determinism, time and memory
measurement, atomic files and typed result files, progress logging, settings built from the config,
checkpoints, and the hyper-optimisation harness (:mod:`truncback.runtime.harness`)."""
