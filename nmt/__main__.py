"""``python -m nmt``: the same as the ``nmt`` command."""
from nmt.cli import run

if __name__ == "__main__":
    run()
