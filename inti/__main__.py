"""`python -m inti ...` is the `inti` command."""

import sys

from inti.cli import main

sys.exit(main())
