"""`i2v worker`: one process per GPU that loads its model once and takes jobs for it from the Redis queue.

Also runnable as `python -m i2v.jobs.worker_cli` (same options).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from i2v.errors import I2VError
from i2v.jobs.config import ServiceSettings
from i2v.jobs.redis_shared import check_reachable, connect, queue_url, redacted
from i2v.jobs.redis_worker import RedisWorker
from i2v.request import default_model


class WorkerError(Exception):
    """Why the worker cannot start; printed as one line, exit code 1."""


def worker_main(queue: str | None, gpu: int | None, device: str | None, model: str | None, name: str | None,
                *, queue_file: str | None = None) -> None:
    """Start a worker and consume until SIGINT (finishes the running job) or SIGTERM (hands it back at once)."""
    try:
        worker = prepare_worker(queue, gpu, device, model, name, queue_file=queue_file)
    except (WorkerError, I2VError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    worker.run_forever()
    # After SIGTERM the handed-back job's thread may still be inside torch, and finalising the interpreter under
    # it aborts the process (std::terminate): leave without finalising.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def prepare_worker(queue: str | None, gpu: int | None, device: str | None, model: str | None, name: str | None,
                   *, queue_file: str | None = None) -> RedisWorker:
    """Pin the device before torch starts CUDA, check Redis, load the model: every failure is one clear line."""
    settings = ServiceSettings()
    url = queue_url(queue, queue_file)
    if not url:
        raise WorkerError("no queue to take jobs from: pass --queue redis://HOST:6379/0 or --queue-file PATH, "
                          "or set I2V_QUEUE_URL or I2V_QUEUE_URL_FILE")
    device = pin_device(gpu, device)
    client = connect(url)
    check_reachable(client, url)
    _setup_logging()
    worker = RedisWorker(client, model or default_model(), device=device, name=name, lease_seconds=settings.lease_seconds)
    backend = worker.load()
    print(f"i2v worker {worker.name}: {worker.model} on {backend.device} ({backend.dtype}), "
          f"queue {redacted(url)}; ready", flush=True)
    return worker


def pin_device(gpu: int | None, device: str | None) -> str | None:
    """`--gpu N` hides every other GPU from this process (CUDA_VISIBLE_DEVICES), so it must run before CUDA starts;
    the process then sees its card as cuda:0. `--device` is passed on as given (cpu, cuda:N, mps)."""
    if gpu is not None and device is not None:
        raise WorkerError("pass --gpu N or --device, not both")
    if gpu is None:
        return device
    if gpu < 0:
        raise WorkerError(f"--gpu must be a GPU number (0, 1, …), got {gpu}")
    loaded = sys.modules.get("torch")
    if loaded is not None and loaded.cuda.is_initialized():
        raise WorkerError("CUDA was started before --gpu could pin the device; run the worker in a fresh process")
    os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    import torch

    if not torch.cuda.is_available():
        raise WorkerError(f"--gpu {gpu}: no CUDA GPU {gpu} that torch {torch.__version__} can use here "
                          "(nvidia-smi lists the GPUs; use --device cpu for a CPU worker)")
    return "cuda:0"


def _setup_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m i2v.jobs.worker_cli", description=__doc__.splitlines()[0])
    parser.add_argument("--queue", help="redis://HOST:PORT/DB [env I2V_QUEUE_URL]")
    parser.add_argument("--queue-file", help="a file holding the Redis URL, kept out of `ps` [env I2V_QUEUE_URL_FILE]")
    parser.add_argument("--gpu", type=int, help="GPU number to pin (sets CUDA_VISIBLE_DEVICES)")
    parser.add_argument("--device", help="cpu, cuda:N or mps, instead of --gpu")
    parser.add_argument("--model", help="hub id or local folder [env I2V_MODEL]")
    parser.add_argument("--name", help="name shown in /api/v1/workers [default: HOST:PID]")
    args = parser.parse_args(argv)
    worker_main(args.queue, args.gpu, args.device, args.model, args.name, queue_file=args.queue_file)


if __name__ == "__main__":
    main()
