"""``python -m edgeq``: the same as the ``edgeq`` command."""

import sys

from edgeq.cli import main

sys.exit(main())
