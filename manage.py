#!/usr/bin/env python
"""Django's command-line utility for powernode in a checkout; an installed copy has ``powernode-admin``."""

from powernode.cli import main

if __name__ == "__main__":
    main()
