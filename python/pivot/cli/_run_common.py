"""What `pivot repro` and `pivot run` share: their options, parsed once into `RunArgs`, and
running an order through the engine with the console or JSONL sink (or, with `--display tui`
or `--tui-log`, through `cli/_live.py`)."""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from pivot.cli import _common

if TYPE_CHECKING:
    from pivot.engine.context import Context
    from pivot.engine.runner import RunOptions
    from pivot.project import Project

Command = Callable[..., None]

jobs_option = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Stages to process in parallel (default: config core.jobs, else the CPU count).",
)


@dataclass(frozen=True)
class RunArgs:
    """The shared options of `repro` and `run`: where the cache is, how to report, and what
    the engine is asked to do."""

    cache_dir: pathlib.Path | None  # absolute (from the cwd); None: env, config or default
    all_pipelines: bool  # --all: every pipeline file at or below the cwd, as one graph
    as_json: bool
    options: RunOptions  # `options.stream_output` is --show-output
    display: str = "plain"  # "tui" or "plain", resolved (`_live.resolve_display`)
    tui_log: pathlib.Path | None = None  # --tui-log: every run event as JSONL to this file
    # repro only (`run_options(watch=True)`)
    watch: bool = False
    debounce_ms: int | None = None  # None: the watch loop's default
    serve: bool = False
    # repro only (`run_options(pull=True)`): --pull / --remote NAME (which implies --pull);
    # `with_pull` turns them into the engine's `options.pull` hook once the project is known.
    pull: bool = False
    remote: str | None = None
    # --executor: "local", dask://HOST:PORT, or None (config core.executor, else local);
    # `with_executor` turns it into the engine's `options.executor` (docs/cluster.md).
    executor: str | None = None

    @property
    def show_output(self) -> bool:
        return self.options.stream_output


def run_options(
    *, keep_going: bool, watch: bool = False, pull: bool = False
) -> Callable[[Command], Command]:
    """Declare the options of `repro` and `run` (docs/cli.md, "Running stages") and pass them
    to the command as one `run_args: RunArgs` argument. `keep_going` is the command's default after
    a failure: False adds `-k/--keep-going`, True adds `--fail-fast`. `watch` adds the live
    loop's `--watch`, `--debounce`, `--serve`; `pull` adds `--pull`, `--remote` (repro)."""
    if keep_going:
        failure = click.option(
            "--fail-fast",
            "keep_going",
            flag_value=False,
            default=True,
            help="Stop at the first failure (default: keep going).",
        )
    else:
        failure = click.option(
            "-k",
            "--keep-going",
            "keep_going",
            is_flag=True,
            help="After a failure, keep running stages that do not depend on it.",
        )
    options = [
        failure,
        _common.all_option,
        _common.cache_dir_option,
        jobs_option,
        click.option(
            "--allow-uncached-incremental",
            is_flag=True,
            help="Run stages whose IncrementalOut exists on disk but is not in the cache.",
        ),
        click.option(
            "--checkout-missing",
            is_flag=True,
            help="Restore missing tracked files (.pvt) from the cache before running.",
        ),
        click.option(
            "--no-commit",
            is_flag=True,
            help="Run and hash outputs but write no lock, cache object or run-cache entry; "
            "record later with 'pivot commit'.",
        ),
        click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="Stream JSONL events on stdout (one JSON object per line).",
        ),
        click.option(
            "-f", "--force", is_flag=True, help="Run even if unchanged; bypass the run cache."
        ),
        click.option(
            "--show-output",
            is_flag=True,
            help="Stream each stage's stdout/stderr as it runs, prefixed by [stage].",
        ),
        click.option(
            "--display",
            type=click.Choice(("tui", "plain")),
            default=None,
            help="tui: a live table of stages (needs the 'tui' extra); plain: lines on stderr. "
            "Default: tui on a terminal when textual is installed.",
        ),
        click.option(
            "--executor",
            default=None,
            metavar="URL",
            help="Where stages run: 'local' (worker processes) or dask://HOST:PORT (a Dask "
            "cluster sharing only the remote; docs/cluster.md). Default: config core.executor.",
        ),
        click.option(
            "--tui-log",
            type=click.Path(dir_okay=False, path_type=pathlib.Path),
            default=None,
            metavar="PATH",
            help="Also write every run event (stage output included) to PATH as JSONL.",
        ),
    ]
    if watch:
        options += [
            click.option(
                "--watch",
                is_flag=True,
                help="Run, then re-run what each change to data, params or code makes stale.",
            ),
            click.option(
                "--debounce",
                type=click.IntRange(min=0),
                default=None,
                metavar="MS",
                help="With --watch: wait for MS milliseconds of quiet before re-running (300).",
            ),
            click.option(
                "--serve",
                is_flag=True,
                help="With --watch: accept JSON-RPC on .pivot/tmp/serve.sock (docs/serve.md).",
            ),
        ]

    if pull:
        options += [
            click.option(
                "--pull",
                is_flag=True,
                help="Before running a stage, fetch its run-cache entry and outputs from the "
                "remote.",
            ),
            click.option(
                "-r",
                "--remote",
                "remote_name",
                default=None,
                help="Remote for --pull and --executor dask (default remote).",
            ),
        ]

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def collect(
            *args: Any,
            keep_going: bool,
            all_pipelines: bool,
            cache_dir: pathlib.Path | None,
            jobs: int | None,
            allow_uncached_incremental: bool,
            checkout_missing: bool,
            no_commit: bool,
            as_json: bool,
            force: bool,
            show_output: bool,
            display: str | None,
            tui_log: pathlib.Path | None,
            executor: str | None = None,
            watch: bool = False,
            debounce: int | None = None,
            serve: bool = False,
            pull: bool = False,
            remote_name: str | None = None,
            **kwargs: Any,
        ) -> None:
            from pivot.cli import _live
            from pivot.engine.runner import RunOptions

            _live.check_usage(
                watch=watch, debounce=debounce, serve=serve, display=display, as_json=as_json
            )
            quiet = _common.quiet(click.get_current_context())
            if executor is not None:
                from pivot.config import executor_value
                from pivot.exceptions import ConfigError

                try:
                    executor_value("--executor", executor)
                except ConfigError as e:
                    raise click.BadParameter(str(e), param_hint="--executor") from None
                if watch and executor != "local":
                    raise click.UsageError("--executor dask cannot be combined with --watch")
            run_args = RunArgs(
                cache_dir=cache_dir,
                all_pipelines=all_pipelines,
                as_json=as_json,
                options=RunOptions(
                    force=force,
                    keep_going=keep_going,
                    no_commit=no_commit,
                    jobs=jobs,
                    checkout_missing=checkout_missing,
                    allow_uncached_incremental=allow_uncached_incremental,
                    stream_output=show_output,
                ),
                display=_live.resolve_display(display, as_json, quiet),
                tui_log=tui_log,
                watch=watch,
                debounce_ms=debounce,
                serve=serve,
                pull=pull or remote_name is not None,
                remote=remote_name,
                executor=executor,
            )
            command(*args, run_args=run_args, **kwargs)

        decorated: Command = collect
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate


def with_pull(run_args: RunArgs, project: Project) -> RunArgs:
    """`run_args` whose engine options fetch each stage's run-cache entry and outputs from the
    remote before the stage would run (`--pull`); unchanged without --pull. The remote is
    opened here, so a missing or misconfigured remote is an error before anything runs."""
    if not run_args.pull:
        return run_args
    from pivot.engine import transfer
    from pivot.storage.remote import open_remote

    remote = open_remote(project, run_args.remote, run_args.options.jobs)
    options = dataclasses.replace(run_args.options, pull=transfer.pull_hook(remote))
    return dataclasses.replace(run_args, options=options)


def with_executor(run_args: RunArgs, project: Project) -> RunArgs:
    """`run_args` whose engine options send stages to a Dask cluster when `--executor` (or
    config `core.executor`) says dask://…; unchanged for local runs. A remote is required: it
    is the only thing the cluster's workers share with this machine."""
    from pivot.config import executor_value

    url = executor_value("--executor", run_args.executor) if run_args.executor else None
    if run_args.executor is None:
        url = project.config.executor
    if url is None:
        return run_args
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise click.UsageError(
            f"--executor {url} needs Dask's distributed: pip install 'pivot[dask]'"
        )
    from pivot.engine.cluster.executor import DaskExecutor
    from pivot.exceptions import RemoteNotFoundError
    from pivot.storage.remote import open_remote

    try:
        remote = open_remote(project, run_args.remote)  # -j is the number of stages here
    except RemoteNotFoundError as e:
        raise click.UsageError(
            f"--executor {url} needs a remote, the only storage the cluster shares with this "
            f"machine ({e}); add one with 'pivot remote add NAME URL --default'"
        ) from None
    options = dataclasses.replace(run_args.options, executor=DaskExecutor(url, remote))
    return dataclasses.replace(run_args, options=options)


def pull_missing_tracked(run_args: RunArgs, stages: tuple[str, ...]) -> None:
    """`--pull`: bring the tracked inputs a fresh clone lacks before the graph is checked
    (`engine.transfer.pull_missing_tracked`)."""
    if not run_args.pull:
        return
    from pivot.engine import transfer
    from pivot.engine.context import load_context
    from pivot.storage.remote import open_remote

    ctx = load_context(
        cache_dir=run_args.cache_dir,
        check_missing=False,
        all_pipelines=run_args.all_pipelines,
    )
    remote = open_remote(ctx.project, run_args.remote, run_args.options.jobs)
    transfer.pull_missing_tracked(ctx, remote, _common.stage_names(ctx, stages) or None)


def execute(click_ctx: click.Context, ctx: Context, order: list[str], run_args: RunArgs) -> None:
    """Run `order` through the engine with the console or JSONL sink; exit 1 on failure."""
    from pivot.cli import output
    from pivot.cli.progress import hashing
    from pivot.engine import runner

    run_args = with_executor(run_args, ctx.project)
    quiet = _common.quiet(click_ctx)
    if order and (run_args.display == "tui" or run_args.tui_log is not None):
        from pivot.cli import _live

        _live.run_once(click_ctx, ctx, order, run_args)
        return
    sink: output.ConsoleSink | output.JsonlSink
    if run_args.as_json:
        sink = output.JsonlSink(show_output=run_args.show_output)
    else:
        sink = output.ConsoleSink(quiet=quiet, show_output=run_args.show_output)
    sink.begin()

    if not order:
        if isinstance(sink, output.JsonlSink):
            sink.finish(None)
        elif not quiet:
            click.echo("No stages to run", err=True)
        return

    from pivot.results.history import RunRecorder

    recorder = RunRecorder(click_ctx.info_name or "run", click_ctx.params)  # `pivot history`
    with hashing(not quiet):
        summary = runner.run(ctx, order, run_args.options, [sink, recorder])
    recorder.save(ctx.project, summary)
    sink.finish(summary)
    if not summary.ok:
        click_ctx.exit(1)
