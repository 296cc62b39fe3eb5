"""``python -m xatmodist`` (e.g. under ``torchrun -m``): the ``xatmodist`` command."""

import sys

from .cli import main

sys.exit(main())
