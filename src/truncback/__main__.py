import sys

from truncback.cli import main

sys.exit(main())
