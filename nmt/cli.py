"""The ``nmt`` command line: the group, logging, and the entry point. Every command lives in its
package's ``cli.py`` (listed in ``COMMANDS`` below): it parses its options into a typed config,
calls one library function and prints its typed result; user mistakes surface as one-line errors."""
from __future__ import annotations

import importlib
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


# Every command, and the package cli.py that defines it (where its COMMANDS list it). A command's module
# is imported when the command runs, so an nmt call loads only its own command's options and classes;
# nmt --help loads them all. tests/test_inference_layer.py checks this table against the modules.
COMMANDS = {
    "prepare": "nmt.data.cli", "data": "nmt.data.cli",
    "train": "nmt.training.cli", "finetune": "nmt.training.cli", "pretrain": "nmt.training.cli",
    "average": "nmt.training.cli", "download": "nmt.training.cli", "extend-langs": "nmt.training.cli",
    "trim-vocab": "nmt.training.cli",
    "translate": "nmt.translate.cli", "translate-corpus": "nmt.translate.cli", "translate-file": "nmt.translate.cli",
    "export": "nmt.translate.cli",
    "evaluate": "nmt.evaluate.cli",
    "serve": "nmt.serve.cli",
    "package": "nmt.wmt.cli", "unwrap": "nmt.wmt.cli",
}


class _Commands(click.Group):
    """The group of COMMANDS, each loaded from its module when it is asked for."""

    def list_commands(self, ctx) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return {command.name: command for command in importlib.import_module(COMMANDS[name]).COMMANDS}[name]


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nmt")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging (also fairseq's own).")
def main(verbose: bool) -> None:
    """Multilingual NMT: prepare, train, translate, evaluate, package."""
    _setup_logging(verbose)


def _terminate(signum, frame) -> None:
    click.echo("nmt: terminated", err=True)
    sys.exit(128 + signum)


def invoke(argv=None) -> int:
    """Run one ``nmt`` command line (default: this process's arguments); its exit status. A usage
    error (unknown option, bad value) is one line and status 2. A command's own exit (an error
    line from ``friendly_errors``) propagates as ``SystemExit``."""
    try:
        status = main.main(args=argv, prog_name="nmt", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `nmt`: the help as help, not as one error line
        click.echo(exc.ctx.get_help(), err=True)
        return 2
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
