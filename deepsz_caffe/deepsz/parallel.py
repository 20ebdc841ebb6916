"""Parallel assessment: one task per layer, each in its own process with its own Caffe net.

Algorithm 1 walks each layer's bounds in order (the next bound depends on the last drop), but
layers are independent, so a layer is the unit of work. Every task reads the same kept full
pass (`caffe.suffix.PrefixStore`, recorded once by the caller): a task builds only its layer's
suffix net, or a full TEST net where the net is not a chain from that layer. Processes, not threads: the SZ 2
library and Caffe keep global state. Every task computes the same deterministic numbers in any
process, so results do not depend on the worker count or backend:

- `workers=N`: a local process pool (spawned, so no Caffe state is inherited);
- `gpus=[0, 1, ...]`: one single-process pool per GPU, layers dealt round-robin
  (tests/test_gpu.py compares it with the CPU where a GPU is present; docs/gpu.md: what has run);
- `scheduler="tcp://host:8786"`: a Dask distributed cluster, for users beyond one machine.
"""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace

from .. import log as logs


@dataclass(frozen=True)
class LayerTask:
    layer: str
    cache_path: str
    expected_loss: float
    prefix_dir: str                # the kept full pass (model, weights, iterations are its own)
    lossy: str = "sz2"
    lossless: str = "best"
    gpu: int | None = None
    agreement: bool = False        # top-1 against the original net's predictions


def run_task(task: LayerTask, progress: bool = False) -> dict:
    """Assess one layer (in whatever process runs this): {"layer", "base_top1", "points"}."""
    from .assess import Assessment, log

    def runner_for(layer: str):
        from ..caffe.phase import use_device
        from ..caffe.suffix import PrefixStore
        from .probe import layer_runner

        store = PrefixStore.open(task.prefix_dir, [layer])
        if store is None:
            raise RuntimeError(f"no complete prefix pass for layer {layer} in {task.prefix_dir}")
        use_device(task.gpu)
        return layer_runner(store, layer, agreement=task.agreement, gpu=task.gpu, log=log)

    assessment = Assessment([task.layer], task.cache_path, runner_for, lossy=task.lossy,
                            lossless=task.lossless,
                            metric="agreement" if task.agreement else "top-1")
    points = assessment.run(task.expected_loss, progress=progress)[task.layer]
    return {"layer": task.layer, "base_top1": assessment.base_top1, "points": points,
            "suffix": assessment.cache.get("suffix", {}).get(task.layer)}


def run_tasks(tasks: list[LayerTask], *, workers: int = 1, gpus: list[int] | None = None,
              scheduler: str | None = None) -> list[dict]:
    """Run every task; results in task order."""
    if scheduler:
        return _run_dask(tasks, scheduler)
    if gpus:
        return _run_pools([replace(t, gpu=gpus[i % len(gpus)]) for i, t in enumerate(tasks)],
                          n_pools=len(gpus))
    if workers > 1 and len(tasks) > 1:
        return _run_pools(tasks, n_pools=1, pool_size=min(workers, len(tasks)))
    return [run_task(t, progress=True) for t in tasks]


def _run_pools(tasks, n_pools: int, pool_size: int = 1) -> list[dict]:
    ctx = multiprocessing.get_context("spawn")
    pools = [ProcessPoolExecutor(pool_size, mp_context=ctx, initializer=logs.inherit,
                                 initargs=(logs.handed_down(),)) for _ in range(n_pools)]
    try:
        futures = [pools[i % n_pools].submit(run_task, t) for i, t in enumerate(tasks)]
        with logs.progress(total=len(futures), desc="assess (layers)", unit="layer") as bar:
            for _ in as_completed(futures):
                bar.update()
        return [f.result() for f in futures]
    finally:
        for pool in pools:
            pool.shutdown(cancel_futures=True)


def _run_dask(tasks, scheduler: str) -> list[dict]:
    from dask.distributed import Client

    with Client(scheduler) as client:
        futures = client.map(run_task, tasks, pure=False)
        return client.gather(futures)
