import sys

from selfrecon.cli.main import main

sys.exit(main())
