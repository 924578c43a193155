"""The `pivot` command line: a lazy click group and the one error boundary.

Subcommands live one per module and are imported only when invoked, so `pivot --help` and
`import pivot.cli` stay fast (no rustworkx, pydantic or engine). To add a command, give its
module a click command attribute and register it in COMMANDS with a short help line.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from dataclasses import dataclass
from importlib import import_module
from typing import Any, TextIO

import click

from pivot import __version__
from pivot.exceptions import PivotError

# name -> (module, attribute, short help shown by `pivot --help` without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("pivot.cli.init", "init", "Create .pivot/ in the current directory."),
    "repro": (
        "pivot.cli.repro",
        "repro",
        "Run stages and everything upstream, skipping what is up to date.",
    ),
    "run": ("pivot.cli.run", "run", "Run exactly the named stages, in the order given."),
    "commit": ("pivot.cli.commit", "commit", "Record the workspace in locks without running."),
    "status": ("pivot.cli.status", "status", "Show stale stages and why."),
    "verify": ("pivot.cli.verify", "verify", "Check every stage is up to date and cached."),
    "checkout": ("pivot.cli.checkout", "checkout", "Restore outputs and tracked files from cache."),
    "list": ("pivot.cli.list_cmd", "list_cmd", "List stages with their deps and outs."),
    "dag": ("pivot.cli.dag", "dag", "Show the stage graph as text, DOT or Mermaid."),
    "track": ("pivot.cli.track", "track", "Put data files or directories under pivot."),
    "metrics": ("pivot.cli.metrics", "metrics", "Show and compare metrics across revisions."),
    "params": ("pivot.cli.params", "params", "Show and compare stage params across revisions."),
    "plots": ("pivot.cli.plots", "plots", "Render plots of revisions into one HTML page."),
    "diff": ("pivot.cli.diff", "diff", "Outputs and files changed between revisions."),
    "get": ("pivot.cli.get", "get", "Write an output as it was at a git revision."),
    "history": ("pivot.cli.history", "history", "List recent runs (repro/run)."),
    "show": ("pivot.cli.history", "show_run", "Show one recorded run, stage by stage."),
    "config": ("pivot.cli.config_cmd", "config", "Show or change project settings."),
    "doctor": ("pivot.cli.doctor", "doctor", "Check the installation, cache and link modes."),
    "completion": ("pivot.cli.completion", "completion", "Print a shell-completion script."),
    "remote": ("pivot.cli.remote", "remote", "Add, list, modify or remove remotes."),
    "push": ("pivot.cli.transfer", "push", "Upload cached outputs to a remote."),
    "fetch": ("pivot.cli.transfer", "fetch", "Download cached outputs from a remote."),
    "pull": ("pivot.cli.transfer", "pull", "Fetch from a remote, then check out."),
    "gc": ("pivot.cli.gc", "gc", "Remove cached data no revision or recent run needs."),
}

LOGGER_NAME = "pivot"


@dataclass
class CliState:
    """Global options, in `ctx.obj` for every subcommand."""

    verbose: int = 0
    quiet: bool = False


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at emit time (CliRunner swaps it per invocation)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(verbose: int, quiet: bool) -> None:
    """`pivot` logger to stderr: WARNING by default, INFO with -v, DEBUG with -vv, ERROR with -q."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler):
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(handler)
    if verbose:
        # The Rust core reports a rebuilt (corrupt or missing) stat index only when asked to.
        os.environ["PIVOT_VERBOSE"] = "1"
    if quiet:
        logger.setLevel(logging.ERROR)
    elif verbose >= 2:
        logger.setLevel(logging.DEBUG)
    elif verbose == 1:
        logger.setLevel(logging.INFO)
    else:
        logger.setLevel(logging.WARNING)


def _report(ctx: click.Context, exc: BaseException) -> None:
    """Print an error as one line on stderr (traceback first with -v)."""
    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    if state.verbose:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, PivotError):
        message = " ".join(str(exc).splitlines()) or type(exc).__name__
        click.echo(f"Error: {message}", err=True)
        return
    message = " ".join(str(exc).splitlines())
    click.echo(f"Error: {type(exc).__name__}: {message}".rstrip(": "), err=True)


class LazyGroup(click.Group):
    """Group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, attr, _help = COMMANDS[cmd_name]
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise  # a real import error inside the command module
            raise PivotError(f"command '{cmd_name}' is not available in this build") from None
        command = getattr(module, attr)
        assert isinstance(command, click.Command), f"{module_name}.{attr} is not a click command"
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_m, _a, short) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        # The one error boundary: every command's PivotError, unexpected exception or Ctrl-C
        # becomes one stderr line and an exit code. click's own exceptions (usage errors,
        # --help, ctx.exit) pass through to click, which prints them and exits 2/0/n.
        from pivot.storage.index import deferred_saves

        with deferred_saves():  # one stat-index write at the end of the command
            try:
                return super().invoke(ctx)
            except (
                click.exceptions.ClickException,
                click.exceptions.Exit,
                click.exceptions.Abort,
            ):
                raise
            except KeyboardInterrupt:
                click.echo("Interrupted", err=True)
                ctx.exit(130)
            except BrokenPipeError:
                # stdout closed early (`pivot list | head`): not an error worth a message.
                _silence_stdout()
                ctx.exit(1)
            except Exception as exc:
                _report(ctx, exc)
                ctx.exit(1)


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More output (-vv: debug); tracebacks on error.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.version_option(__version__, "--version", prog_name="pivot", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """pivot: Python data pipelines with a content-addressed cache."""
    ctx.obj = CliState(verbose=verbose, quiet=quiet)
    configure_logging(verbose, quiet)


def main(argv: list[str] | None = None) -> None:
    """Console entry point (`pivot`)."""
    cli.main(args=argv, prog_name="pivot")


if __name__ == "__main__":
    main()
