"""``python -m r1zero.sandbox``: say whether model code can run sandboxed here, and if not,
why and how to fix it (exit status 0 or 1)."""

import sys

from r1zero.sandbox.pool import probe


def main() -> int:
    ok, message = probe()
    print(f"sandbox: {'ok' if ok else 'unavailable'}: {message}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
