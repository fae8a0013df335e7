import sys

from vmferry.cli.main import main

sys.exit(main())
