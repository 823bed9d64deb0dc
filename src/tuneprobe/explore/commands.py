"""``tuneprobe explore RESULTS_DIR [--task T] [--model M] [--out FILE] [--serve]``."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import Annotated

import typer


def serve(directory: Path, host: str = "127.0.0.1", port: int = 0) -> http.server.ThreadingHTTPServer:
    """A static file server of ``directory`` on ``host`` (a free port when ``port`` is 0), running in a
    daemon thread; ``server.server_address`` has the port, ``server.shutdown()`` stops it."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def register(app: typer.Typer) -> None:
    """Add ``tuneprobe explore`` to ``app``."""

    @app.command("explore")
    def explore_cmd(
        results_dir: Annotated[Path, typer.Argument(help="a `tuneprobe run` results directory")],
        task: Annotated[str | None, typer.Option("--task", help="task id (default: every task)")] = None,
        model: Annotated[str | None, typer.Option("--model", help="model name (default: the first)")] = None,
        split: Annotated[
            str | None, typer.Option("--split", help="split (default: the one with most cells)")
        ] = None,
        tuned_on: Annotated[
            str | None, typer.Option("--tuned-on", help="task the model was tuned on")
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out", help="output HTML file (one task only; default RESULTS_DIR/explore/<task>.html)"
            ),
        ] = None,
        max_points: Annotated[
            int, typer.Option(help="show a stratified subsample above this many examples")
        ] = 5000,
        seed: Annotated[int, typer.Option(help="seed of the subsample")] = 0,
        n_cubes: Annotated[int, typer.Option(help="Mapper cover: cubes per lens axis")] = 10,
        overlap: Annotated[float, typer.Option(help="Mapper cover: fractional overlap")] = 0.3,
        min_samples: Annotated[int, typer.Option(help="Mapper DBSCAN min_samples")] = 3,
        eps_scale: Annotated[
            float, typer.Option(help="Mapper DBSCAN eps = median k-NN distance x this")
        ] = 1.0,
        data_dir: Annotated[str | None, typer.Option(help="task data directory (default: the run's)")] = None,
        cache_dir: Annotated[
            str | None, typer.Option(help="representation cache (default: the run's)")
        ] = None,
        umap: Annotated[
            bool,
            typer.Option(
                "--umap/--no-umap",
                help="also a UMAP projection of every cell (needs umap-learn; ~6 s CPU per ps-role cell)",
            ),
        ] = False,
        serve_page: Annotated[
            bool, typer.Option("--serve", help="serve the page(s) on 127.0.0.1 at a free port until Ctrl-C")
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress lines")] = False,
    ) -> None:
        """Write a self-contained, offline HTML explorer of a task's representations across fine-tuning
        snapshots and layers: PCA projection with DirectProbe clusters and label centroids, a Mapper graph
        with node tracking, hull distances, and the examples behind any point or node."""
        from tuneprobe.explore.data import available, load_series
        from tuneprobe.explore.page import write_explorer
        from tuneprobe.explore.views import MapperParams

        log = None if quiet else (lambda line: typer.echo(line, err=True))
        tasks = [task] if task else sorted({r["task"] for r in available(results_dir)})
        if out is not None and len(tasks) != 1:
            raise typer.BadParameter("--out needs --task when the results hold several tasks")
        if umap:
            from tuneprobe.explore.views import umap_available

            if not umap_available():
                typer.echo(
                    "umap-learn is not installed: the page offers PCA only (pip install umap-learn)", err=True
                )
        params = MapperParams(n_cubes=n_cubes, overlap=overlap, min_samples=min_samples, eps_scale=eps_scale)
        pages = []
        for t in tasks:
            series = load_series(results_dir, t, model, split, tuned_on, data_dir, cache_dir, log=log)
            path = out or Path(results_dir) / "explore" / f"{series.task}.html"
            info = write_explorer(series, path, max_points, seed, params, log, umap)
            pages.append(info["path"])
            typer.echo(
                f"{info['path']}  ({info['bytes'] / 1e6:.1f} MB, {info['n_points']} points, "
                f"{len(series.steps)} snapshots x {len(series.layers)} layers, {info['seconds']:.1f} s)"
            )
        if serve_page:
            root = pages[0].parent.resolve()
            server = serve(root)
            port = server.server_address[1]
            for p in pages:
                rel = p.resolve().relative_to(root) if p.resolve().parent == root else p.name
                typer.echo(f"serving http://127.0.0.1:{port}/{rel}  (Ctrl-C stops)")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                server.shutdown()
