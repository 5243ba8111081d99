"""Data parallelism with ``jax.sharding``: the batch is split over devices, the parameters replicated.

One mesh axis, ``"data"``, over every device JAX sees (all local devices, or every device
of every host after :func:`initialize_distributed`). The training steps are ordinary
``jax.jit`` functions; putting the batch on ``NamedSharding(mesh, P("data"))`` and the
state on ``NamedSharding(mesh, P())`` is all it takes for XLA (GSPMD) to run them data
parallel, with the gradient all-reduce and the batch-norm statistics over the whole
global batch inserted by the compiler. The numbers are those of one device up to
floating-point reassociation.

Multi-host (one process per host, e.g. a GPU node each)::

    clspec cifar pretrain --coordinator HOST0:1234 --num-processes 2 --process-id {0,1} ...

or set ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``; under SLURM,
Open MPI or on a TPU pod, ``--distributed`` lets JAX detect all three. Every process loads the
same dataset and feeds its own slice of every global batch; process 0 alone writes the run
folder (put ``--out`` on a file system all hosts see, so ``--resume`` finds the checkpoint).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def initialize_distributed(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> bool:
    """Call ``jax.distributed.initialize`` when a multi-host run is asked for; return whether it did.

    Asked for means: ``auto`` (let JAX detect SLURM, Open MPI or a TPU pod), any of the three
    arguments, or the environment variables ``JAX_COORDINATOR_ADDRESS`` (with
    ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` where the cluster is not detected). Arguments win
    over the environment. Must run before any other JAX call.
    """
    env = os.environ
    coordinator = coordinator or env.get("JAX_COORDINATOR_ADDRESS") or None
    if num_processes is None and env.get("JAX_NUM_PROCESSES"):
        num_processes = _env_int("JAX_NUM_PROCESSES")
    if process_id is None and env.get("JAX_PROCESS_ID"):
        process_id = _env_int("JAX_PROCESS_ID")
    if not auto and coordinator is None and num_processes is None and process_id is None:
        return False
    if not auto and (coordinator is None or num_processes is None or process_id is None):
        raise ValueError(
            "multi-host runs need all of --coordinator, --num-processes and --process-id (or "
            f"--distributed to detect the cluster), got {coordinator!r}, {num_processes!r}, {process_id!r}"
        )
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id}")
    jax.distributed.initialize(coordinator, num_processes, process_id)
    return True


def _env_int(name: str) -> int:
    try:
        return int(os.environ[name])
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {os.environ[name]!r}") from None


@dataclass(frozen=True)
class DataParallel:
    """A 1-D device mesh and the two shardings a data-parallel step needs."""

    mesh: Mesh

    @property
    def num_devices(self) -> int:
        return self.mesh.devices.size

    @property
    def batch(self) -> NamedSharding:
        """Leading (batch) axis split over the ``"data"`` axis."""
        return NamedSharding(self.mesh, P(DATA_AXIS))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    def check_batch_size(self, batch_size: int, name: str = "batch_size") -> None:
        if batch_size % self.num_devices:
            raise ValueError(
                f"{name} must be divisible by the number of devices ({self.num_devices}), got {batch_size}"
            )

    def replicate(self, tree):
        """Put a pytree (the train state) on every device."""
        return jax.device_put(tree, self.replicated)

    def shard(self, array: np.ndarray) -> jax.Array:
        """Split a host batch over the devices along its first axis.

        Single process: ``array`` is the global batch. Multi-process: ``array`` is this
        process's slice of the global batch (see :meth:`local_slice`).
        """
        if jax.process_count() == 1:
            self.check_batch_size(array.shape[0], "batch size")
            return jax.device_put(array, self.batch)
        return jax.make_array_from_process_local_data(self.batch, array)

    def local_slice(self, global_batch_size: int) -> slice:
        """The rows of each global batch that this process feeds."""
        per_process = global_batch_size // jax.process_count()
        start = jax.process_index() * per_process
        return slice(start, start + per_process)


def data_parallel(devices=None) -> DataParallel:
    """A mesh over ``devices`` (default: all devices, of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    return DataParallel(Mesh(np.asarray(devices), (DATA_AXIS,)))
