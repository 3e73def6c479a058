"""Ray launcher support (hydra-ray-launcher's ``hydra/launcher=ray``) for the asynchronous executor.

hydra-ray-launcher starts Ray inside ``launch()`` when Ray is not running yet. The asynchronous executor
calls ``launch()`` from one thread per job, so before this module two threads started two Ray instances
at once: one trial failed with ``Perhaps you called ray.init twice by accident?`` and the sweep died a
minute later with ``Failed to connect to GCS within 60 seconds``. :func:`ray_session` starts Ray once,
in the sweeper's main thread, with the launcher's own ``hydra.launcher.ray.init`` arguments, before any
job; every ``launch()`` then finds Ray running and only submits its task (Ray's task API is thread-safe).
Ray reuses its worker processes across tasks, so a warm job does not import torch and Lightning again.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

from hydra_hpo.errors import UserError

log = logging.getLogger(__name__)

# hydra-ray-launcher sets this default in launch() (a small object store, enough for job configs and returns)
_OBJECT_STORE_DEFAULT = 78643200


def is_ray_launcher(launcher: Any) -> bool:
    """Whether ``launcher`` is hydra-ray-launcher's local ``RayLauncher`` (imports no Ray)."""
    try:
        from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher
    except ImportError:
        return False
    return isinstance(launcher, RayLauncher)


def ray_init_kwargs(launcher: Any) -> dict[str, Any]:
    """The keyword arguments the launcher passes to ``ray.init``, with the launcher's own default added
    to its config (as its ``launch()`` would), so Ray starts as the launcher would start it."""
    from omegaconf import OmegaConf, open_dict

    init = launcher.ray_cfg.init
    with open_dict(init):
        init.setdefault("object_store_memory", _OBJECT_STORE_DEFAULT)
    return dict(OmegaConf.to_container(init, resolve=True))  # type: ignore[arg-type]


@contextlib.contextmanager
def ray_session(launcher: Any) -> Iterator[None]:
    """Run a sweep inside one Ray session when ``launcher`` is the Ray launcher; otherwise do nothing.

    Starts (or connects to, with ``hydra.launcher.ray.init.address``) Ray in this thread before any job
    and shuts it down when the sweep ends, also after Ctrl-C or an error, which stops Ray's processes if
    this session started them. A Ray session that was already running when the sweep began is left alone.
    """
    if not is_ray_launcher(launcher):
        yield
        return
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        kwargs = ray_init_kwargs(launcher)
        log.info("Starting Ray once for the sweep: ray.init(%s)", ", ".join(f"{k}={v!r}" for k, v in kwargs.items()))
        try:
            ray.init(**kwargs)
        except (TypeError, ValueError, RuntimeError, ConnectionError) as exc:  # a wrong key or address, mostly
            raise UserError(f"Ray did not start with hydra.launcher.ray.init={kwargs}: {exc}; see "
                            "https://docs.ray.io/en/latest/ray-core/api/doc/ray.init.html") from exc
    try:
        yield
    finally:
        if started_here and ray.is_initialized():
            ray.shutdown()
