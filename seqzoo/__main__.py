import sys

from seqzoo.cli import main

sys.exit(main())
