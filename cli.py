"""Run optviz from a checkout without installing it: ``python cli.py --help``."""
from optviz.cli import main

if __name__ == "__main__":
    main()
