import sys

from forge.training.cli.main import main

sys.exit(main())
