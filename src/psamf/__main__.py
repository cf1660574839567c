import sys

from psamf.cli import main

sys.exit(main())
