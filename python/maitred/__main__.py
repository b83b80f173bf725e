"""``python -m maitred MODULE:APP``: the same as the ``maitred`` command."""

import sys

from maitred import main

if __name__ == "__main__":
    sys.exit(main())
