"""pivot remote: add, list, modify, remove and choose remotes (docs/remote.md)."""

from __future__ import annotations

import click

from pivot.cli import _common
from pivot.config import REMOTE_INT_KEYS, REMOTE_PLAIN_KEYS, REMOTE_SECRET_KEYS

# The keys of a remote, as `pivot.config` validates them (plain ones first, then secrets).
KEYS = (*sorted(REMOTE_PLAIN_KEYS), *sorted(REMOTE_SECRET_KEYS))


@click.group("remote")
def remote() -> None:
    """Configure remotes: an s3://bucket/prefix or a directory."""


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option("-d", "--default", "make_default", is_flag=True, help="Make it the default.")
@click.option("--local", is_flag=True, help="Write to .pivot/config.local (not committed).")
@click.option("-f", "--force", is_flag=True, help="Replace an existing remote of that name.")
def add(name: str, url: str, make_default: bool, local: bool, force: bool) -> None:
    """Add remote NAME at URL."""
    from pivot.exceptions import ConfigError
    from pivot.storage import remote_config

    pivot_dir = _common.pivot_dir()
    remote_config.check_name(name)
    if name in remote_config.load_remotes(pivot_dir).remotes:
        if not force:
            raise ConfigError(f"remote '{name}' already exists (use --force to replace its url)")
    remote_config.set_keys(pivot_dir, name, {"url": url}, local=local)
    if make_default:
        remote_config.set_default(pivot_dir, name, local=local)
    _common.info(f"Added remote {name}: {url}" + (" (default)" if make_default else ""))


@remote.command("default")
@click.argument("name", required=False)
@click.option("--unset", is_flag=True, help="Forget the default remote.")
@click.option("--local", is_flag=True, help="Write to .pivot/config.local (not committed).")
def default(name: str | None, unset: bool, local: bool) -> None:
    """Set (or with no NAME, print) the default remote."""
    from pivot.exceptions import RemoteNotFoundError
    from pivot.storage import remote_config

    pivot_dir = _common.pivot_dir()
    if unset:
        remote_config.set_default(pivot_dir, None, local=local)
        return
    if name is None:
        current = remote_config.load_remotes(pivot_dir).default
        if current is None:
            raise click.UsageError("no default remote")
        click.echo(current)
        return
    if name not in remote_config.load_remotes(pivot_dir).remotes:
        raise RemoteNotFoundError(f"remote '{name}' is not configured")
    remote_config.set_default(pivot_dir, name, local=local)


@remote.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def list_(as_json: bool) -> None:
    """List remotes: NAME URL (the default is marked)."""
    from pivot.storage import remote_config

    rs = remote_config.load_remotes(_common.pivot_dir())
    if as_json:
        _common.echo_json(
            {
                "default": rs.default,
                "remotes": {
                    n: {"url": s.url, "endpoint_url": s.endpoint_url}
                    for n, s in sorted(rs.remotes.items())
                },
            }
        )
        return
    for name, s in sorted(rs.remotes.items()):
        click.echo(f"{name}\t{s.url}" + ("\t(default)" if name == rs.default else ""))


@remote.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Remove remote NAME from config.yaml and config.local."""
    from pivot.storage import remote_config

    remote_config.remove(_common.pivot_dir(), name)
    _common.info(f"Removed remote {name}")


@remote.command("modify")
@click.argument("name")
@click.argument("key", type=click.Choice(KEYS))
@click.argument("value", required=False)
@click.option("--unset", is_flag=True, help="Remove KEY.")
@click.option("--local", is_flag=True, help="Write to .pivot/config.local (not committed).")
def modify(name: str, key: str, value: str | None, unset: bool, local: bool) -> None:
    """Set KEY of remote NAME (secrets always go to .pivot/config.local)."""
    from pivot.exceptions import RemoteNotFoundError
    from pivot.storage import remote_config

    pivot_dir = _common.pivot_dir()
    if name not in remote_config.load_remotes(pivot_dir).remotes:
        raise RemoteNotFoundError(f"remote '{name}' is not configured")
    if unset == (value is not None):
        raise click.UsageError("give a VALUE or --unset")
    parsed: object = value
    if key in REMOTE_INT_KEYS and value is not None:
        try:
            parsed = int(value)
        except ValueError:
            raise click.UsageError(f"{key} must be an integer, got {value!r}") from None
    remote_config.set_keys(pivot_dir, name, {key: parsed}, local=local)
