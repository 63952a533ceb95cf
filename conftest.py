"""Repository root: keep pytest away from the scripts and benchmarks, which are run directly."""

collect_ignore = ["benchmarks", "scripts", "build"]
