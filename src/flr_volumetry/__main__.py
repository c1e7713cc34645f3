"""``python -m flr_volumetry``: the ``flr-volumetry`` command (see :mod:`flr_volumetry.cli`)."""

import sys

from .cli import main

sys.exit(main())
