"""pivot diff: outputs (and files inside directory outputs) changed between two revisions."""

from __future__ import annotations

import click

from pivot.cli import _results_common as rc


@click.command("diff")
@click.argument("args", nargs=-1, metavar="[A [B]] [TARGETS]...")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def diff(args: tuple[str, ...], as_json: bool) -> None:
    """Outputs and tracked paths added, modified or deleted from A to B (default: HEAD to the
    workspace; one revision: it to the workspace), with the files inside directory outputs.

    The leading one or two arguments that name git revisions (or `workspace`) are A and B;
    the rest are TARGETS: outputs, tracked paths, directories or stage names.
    """
    from pivot.cli import _common
    from pivot.engine.context import load_context
    from pivot.project import open_project
    from pivot.results import outdiff
    from pivot.results.revs import project_rel

    project = open_project()
    with rc.open_revisions(project) as revs:
        names: list[str] = []
        rest = list(args)
        while rest and len(names) < 2 and revs.is_revision(rest[0]):
            names.append(rest.pop(0))
        old, new = rc.rev_pair(revs, names)
        if old.is_workspace and not new.is_workspace:
            raise click.UsageError("the workspace can only be the second revision (B)")
        pipeline = None
        if new.is_workspace:
            loaded = load_context(check_missing=False)
            pipeline = loaded.pipeline
            targets = [rc.target_path(loaded, t) for t in rest]
        else:
            owners = {r.owner for rev in (old, new) for r in revs.recorded(rev).values()}
            targets = [t if t in owners else project_rel(project, t) for t in rest]
        changes = outdiff.diff_outputs(project, revs, old, new, targets, pipeline)

    if as_json:
        _common.echo_json(outdiff.document(changes, old, new))
        return
    if not changes:
        _common.info(f"No changes between {old.label} and {new.label}")
        return
    for kind in outdiff.KINDS:
        paths = [c.path for c in changes if c.kind == kind]
        if paths:
            click.echo(f"{kind.capitalize()}:")
            for p in paths:
                click.echo(f"    {p}")
    counts = outdiff.summary(changes)
    _common.info(
        f"files summary: {counts['added']} added, {counts['modified']} modified, "
        f"{counts['deleted']} deleted ({old.label} -> {new.label})"
    )
