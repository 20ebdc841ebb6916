"""Parallel assessment: one task per layer, each in its own process with its own Caffe net.

Algorithm 1 walks each layer's bounds in order (the next bound depends on the last drop), but
layers are independent, so a layer is the unit of work. Processes, not threads: the SZ 2
library and Caffe keep global state. Every task computes the same deterministic numbers in any
process, so results do not depend on the worker count or backend:

- `workers=N`: a local process pool (spawned, so no Caffe state is inherited);
- `gpus=[0, 1, ...]`: one single-process pool per GPU, layers dealt round-robin (untested here:
  no GPU on our machines);
- `scheduler="tcp://host:8786"`: a Dask distributed cluster, for users beyond one machine.
"""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace

from tqdm import tqdm


@dataclass(frozen=True)
class LayerTask:
    model: str
    weights: str
    layer: str
    cache_path: str
    expected_loss: float
    lossy: str = "sz2"
    lossless: str = "best"
    iterations: int | None = None
    gpu: int | None = None
    suffix: bool = True


def run_task(task: LayerTask, progress: bool = False) -> dict:
    """Assess one layer (in whatever process runs this): {"layer", "base_top1", "points"}."""
    from .assess import Assessment
    from ..caffe.phase import TestPhase

    phase = TestPhase(task.model, task.weights, task.iterations, task.gpu, probed=True)
    assessment = Assessment(phase, [task.layer], task.cache_path, lossy=task.lossy,
                            lossless=task.lossless, suffix=task.suffix)
    points = assessment.run(task.expected_loss, progress=progress)[task.layer]
    return {"layer": task.layer, "base_top1": assessment.base_top1, "points": points}


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
    pools = [ProcessPoolExecutor(pool_size, mp_context=ctx) for _ in range(n_pools)]
    try:
        futures = [pools[i % n_pools].submit(run_task, t) for i, t in enumerate(tasks)]
        with tqdm(total=len(futures), desc="assess (layers)", unit="layer") as bar:
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
