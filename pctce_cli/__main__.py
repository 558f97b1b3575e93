"""`python -m pctce_cli` runs the command-line interface."""

from pctce_cli.cli import main

if __name__ == "__main__":
    main()
