"""``python -m autocall`` runs the command line."""

import sys

from autocall.cli.main import main

sys.exit(main())
