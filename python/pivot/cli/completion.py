"""pivot completion: the shell-completion script for bash, zsh or fish."""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash: eval "$(pivot completion bash)"   (in ~/.bashrc)
    zsh:  eval "$(pivot completion zsh)"    (in ~/.zshrc)
    fish: pivot completion fish > ~/.config/fish/completions/pivot.fish
    """
    from click.shell_completion import get_completion_class

    from pivot.cli import cli

    cls = get_completion_class(shell)
    assert cls is not None  # every name in SHELLS is one click ships
    # The same script `_PIVOT_COMPLETE=<shell>_source pivot` prints.
    click.echo(cls(cli, {}, "pivot", "_PIVOT_COMPLETE").source())
