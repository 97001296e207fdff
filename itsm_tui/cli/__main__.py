"""``python -m itsm_tui.cli``: how ``itsm serve`` starts the console of each browser tab."""

import sys

from itsm_tui.cli.running import main

if __name__ == "__main__":
    sys.exit(main())
