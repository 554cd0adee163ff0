"""The ``nmt`` command line: the group, logging, and the entry point. Every command lives in its
package's ``cli.py`` (registered below): it parses its options into a typed config, calls one
library function and prints its typed result; user mistakes surface as one-line errors."""
from __future__ import annotations

import logging
import signal
import sys

import click

from nmt import __version__
from nmt.cli_util import usage_error_line


def _setup_logging(verbose: bool) -> None:
    if not verbose:  # fairseq, torch and lightning warn a lot about their own internals
        import warnings

        for category in (UserWarning, FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("fairseq", "fairseq_cli", "torch", "matplotlib", "pytorch_lightning", "lightning"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nmt")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging (also fairseq's own).")
def main(verbose: bool) -> None:
    """Multilingual NMT: prepare, train, translate, evaluate, package."""
    _setup_logging(verbose)


def _register_subpackage_commands() -> None:
    from nmt.data.cli import COMMANDS as data_commands
    from nmt.evaluate.cli import COMMANDS as evaluate_commands
    from nmt.serve.cli import COMMANDS as serve_commands
    from nmt.training.cli import COMMANDS as training_commands
    from nmt.translate.cli import COMMANDS as translate_commands
    from nmt.wmt.cli import COMMANDS as wmt_commands

    for command in (data_commands + training_commands + translate_commands + evaluate_commands + serve_commands
                    + wmt_commands):
        main.add_command(command)


_register_subpackage_commands()


def _terminate(signum, frame) -> None:
    click.echo("nmt: terminated", err=True)
    sys.exit(128 + signum)


def invoke(argv=None) -> int:
    """Run one ``nmt`` command line (default: this process's arguments); its exit status. A usage
    error (unknown option, bad value) is one line and status 2. A command's own exit (an error
    line from ``friendly_errors``) propagates as ``SystemExit``."""
    try:
        status = main.main(args=argv, prog_name="nmt", standalone_mode=False)
    except click.UsageError as exc:
        click.echo(usage_error_line(exc), err=True)
        return 2
    except click.Abort:
        click.echo("nmt: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"nmt: error: {' '.join(exc.format_message().split())}", err=True)
        return exc.exit_code
    return status if isinstance(status, int) else 0


def run() -> None:  # console-script entry point
    """Run the CLI in this process, then exit with its status.

    SIGTERM unwinds like Ctrl-C (temporary files removed, exit 143) unless a command installs
    its own handler (training saves a checkpoint first)."""
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(invoke())


if __name__ == "__main__":
    run()
