"""``python -m eil_pipelines`` is ``eil-run``."""

import sys

from .cli import main

sys.exit(main())
