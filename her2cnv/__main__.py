"""``python -m her2cnv``."""
import sys

from .cli import main

sys.exit(main())
