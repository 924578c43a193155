"""pivot dag: the stage graph as text, Graphviz DOT or Mermaid."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from pivot.cli import _common

if TYPE_CHECKING:
    from pivot.graph import PipelineGraph


@click.command("dag")
@click.option("--dot", is_flag=True, help="Graphviz DOT syntax.")
@click.option("--mermaid", is_flag=True, help="Mermaid flowchart syntax.")
@click.option("--json", "as_json", is_flag=True, help="Nodes and edges as JSON.")
@_common.all_option
def dag(dot: bool, mermaid: bool, as_json: bool, all_pipelines: bool) -> None:
    """Show stages in topological order with the stages they depend on."""
    from pivot.engine.context import load_context

    if dot + mermaid + as_json > 1:
        raise click.UsageError("--dot, --mermaid and --json cannot be used together")
    graph = load_context(check_missing=False, all_pipelines=all_pipelines).graph
    if as_json:
        _common.echo_json(to_json(graph), indent=True)
        return
    render = to_dot if dot else to_mermaid if mermaid else to_text
    text = render(graph)
    if text:
        click.echo(text)


def to_text(graph: PipelineGraph) -> str:
    """One line per stage in topological order: `stage <- upstream, ...`."""
    lines = []
    for name in graph.order():
        up = graph.upstream(name)
        lines.append(f"{name} <- {', '.join(up)}" if up else name)
    return "\n".join(lines)


def to_json(graph: PipelineGraph) -> dict[str, object]:
    """`{"nodes": [{name, upstream}], "edges": [{from, to, paths}]}`, nodes topological."""
    nodes = [{"name": n, "upstream": graph.upstream(n)} for n in graph.order()]
    edges = [
        {"from": e.upstream, "to": e.downstream, "paths": list(e.out_paths)} for e in graph.edges()
    ]
    return {"nodes": nodes, "edges": edges}


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: PipelineGraph) -> str:
    lines = ["digraph pivot {", "  rankdir=LR;", "  node [shape=box];"]
    lines += [f"  {_dot_quote(name)};" for name in graph.order()]
    for edge in graph.edges():
        label = _dot_quote("\\n".join(edge.out_paths))
        lines.append(
            f"  {_dot_quote(edge.upstream)} -> {_dot_quote(edge.downstream)} [label={label}];"
        )
    lines.append("}")
    return "\n".join(lines)


def _mermaid_label(text: str) -> str:
    # Inside ["..."] only the double quote needs escaping (as an entity code).
    return text.replace('"', "#quot;")


def to_mermaid(graph: PipelineGraph) -> str:
    # Node ids are s0, s1...: stage names may contain '@', '.' or '-', which ids cannot.
    order = graph.order()
    ids = {name: f"s{i}" for i, name in enumerate(order)}
    lines = ["flowchart TD"]
    lines += [f'  {ids[name]}["{_mermaid_label(name)}"]' for name in order]
    lines += [f"  {ids[e.upstream]} --> {ids[e.downstream]}" for e in graph.edges()]
    return "\n".join(lines)
