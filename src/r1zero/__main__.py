"""`python -m r1zero` is the `r1zero` command."""

from r1zero.cli import main

if __name__ == "__main__":
    main()
