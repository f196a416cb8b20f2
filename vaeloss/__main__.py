"""``python -m vaeloss``: same as the ``vaeloss`` command."""

import sys

from vaeloss.cli import main

sys.exit(main())
