"""Scaling out on a real redis-server: a serve node without a local worker, `i2v worker` processes on the CPU with
the tiny model, and the failures that matter (a worker killed mid-job, a cancel, Redis restarting)."""

import io
import json
import os
import shutil
import signal
import subprocess
import time

import av
import httpx
import pytest
from helpers import RedisServer, ServerProcess, WorkerProcess, free_port, run_cli, worker_command

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None and not os.environ.get("CI"),
    reason="redis-server is not installed (apt install redis-server); these tests need a real Redis",
)

SMALL = {"prompt": "猫转头", "width": 64, "height": 64, "num_frames": 8, "steps": 3, "fps": 8}
MEDIUM = {"prompt": "waves", "width": 128, "height": 128, "num_frames": 16, "steps": 60, "fps": 8}  # ≈6 s, 1 thread
LONG = {"prompt": "waves", "width": 256, "height": 256, "num_frames": 32, "steps": 100, "fps": 8}  # ≈90 s
LEASE_SECONDS = 3
QUEUE_LIMIT = 10


def png() -> bytes:
    from helpers import make_photo

    buffer = io.BytesIO()
    make_photo(96, 64).save(buffer, format="PNG")
    return buffer.getvalue()


class Cluster:
    """One Redis, one `serve --no-local-worker` node, and named CPU workers."""

    def __init__(self, folder, model):
        self.folder, self.model = folder, model
        self.redis = RedisServer(folder).start()
        env = {"I2V_QUEUE_URL": self.redis.url, "I2V_LEASE_SECONDS": str(LEASE_SECONDS), "I2V_QUEUE_LIMIT": str(QUEUE_LIMIT)}
        self.server = ServerProcess(folder / "serve-home", model, env=env, args=("--no-local-worker",))
        (folder / "serve-home").mkdir()
        self.workers: dict[str, WorkerProcess] = {}
        self.http = httpx.Client(timeout=30)

    def add_worker(self, name: str, model=None) -> WorkerProcess:
        worker = WorkerProcess(self.folder, self.redis.url, model or self.model, name, env={"I2V_LEASE_SECONDS": str(LEASE_SECONDS)})
        self.workers[name] = worker.start()
        return worker

    def submit(self, fields: dict) -> httpx.Response:
        return self.http.post(self.server.url + "/api/v1/jobs", files={"image": ("p.png", png(), "image/png")},
                              data={"request": json.dumps(fields)})

    def job(self, job_id: str) -> dict:
        return self.http.get(f"{self.server.url}/api/v1/jobs/{job_id}").json()

    def wait(self, job_id: str, predicate, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if predicate(job):
                return job
            time.sleep(0.05)
        raise AssertionError(f"timed out; last state {job}")

    def wait_done(self, job_id: str, timeout: float = 60) -> dict:
        return self.wait(job_id, lambda job: job["state"] not in ("queued", "running"), timeout)

    def wait_running(self, job_id: str) -> dict:
        return self.wait(job_id, lambda job: job["state"] == "running" and job["progress"].get("step", 0) > 0)

    def workers_listed(self) -> dict[str, dict]:
        listed = self.http.get(self.server.url + "/api/v1/workers").json()["workers"]
        return {worker["name"]: worker for worker in listed}

    def wait_listed(self, names: set[str], timeout: float = 90) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listed = self.workers_listed()
            if set(listed) == names:
                return listed
            time.sleep(0.2)
        raise AssertionError(f"workers listed: {sorted(listed)}, expected {sorted(names)}")

    def history_ids(self) -> list[str]:
        return [job["id"] for job in self.http.get(self.server.url + "/api/v1/jobs", params={"limit": 200}).json()["jobs"]]

    def close(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        self.server.stop()
        self.redis.stop()
        self.http.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, tiny_model):
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), tiny_model)
    try:
        for name in ("a", "b"):
            cluster.add_worker(name)  # they load torch and the model while the serve node starts
        cluster.server.start()
        for worker in cluster.workers.values():
            worker.wait_ready()
        cluster.wait_listed({"a", "b"})
        yield cluster
    finally:
        cluster.close()


def test_worker_and_serve_fail_in_one_line_when_they_cannot_start(tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    result = subprocess.run([*worker_command(), "--queue", dead, "--device", "cpu"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert f"cannot reach Redis at {dead}" in result.stderr
    both = subprocess.run([*worker_command(), "--queue", dead, "--gpu", "0", "--device", "cpu"], capture_output=True, text=True, timeout=60)
    assert both.returncode == 1 and "not both" in both.stderr
    import torch

    if not torch.cuda.is_available():
        no_gpu = subprocess.run([*worker_command(), "--queue", dead, "--gpu", "0"], capture_output=True, text=True, timeout=60)
        assert no_gpu.returncode == 1 and "--gpu 0: no CUDA GPU 0" in no_gpu.stderr
    serve = run_cli("serve", "--port", str(free_port()), "--no-local-worker", env={"I2V_HOME": str(tmp_path), "I2V_QUEUE_URL": dead}, timeout=60)
    assert serve.returncode == 1 and "cannot reach Redis" in serve.stderr


def test_two_workers_share_ten_jobs_and_results_come_back_to_the_serve_node(cluster):
    ids = []
    for seed in range(10):
        response = cluster.submit({**SMALL, "seed": seed})
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    finals = [cluster.wait_done(job_id) for job_id in ids]
    assert [job["state"] for job in finals] == ["succeeded"] * 10, [job["error"] for job in finals]
    assert {job["worker"] for job in finals} == {"a", "b"}
    assert all(job["attempts"] == 1 for job in finals)
    outputs = cluster.server.home / "outputs"
    for job in finals:
        video = cluster.http.get(cluster.server.url + job["video_url"])
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        metadata = cluster.http.get(cluster.server.url + job["metadata_url"]).json()
        assert metadata["worker"] == job["worker"] and metadata["seed"] == job["request"]["seed"]
        assert metadata["output"]["path"] == str((outputs / f"{job['id']}.mp4").resolve())
        assert cluster.http.get(cluster.server.url + job["thumbnail_url"]).headers["content-type"] == "image/jpeg"
    with av.open(io.BytesIO(video.content)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (64, 64, 3)
    history = cluster.history_ids()
    assert all(history.count(job_id) == 1 for job_id in ids)


def test_cancel_reaches_a_job_running_on_a_worker(cluster):
    job = cluster.submit(LONG).json()
    running = cluster.wait_running(job["id"])
    listed = cluster.workers_listed()[running["worker"]]
    assert listed["current_job"] == job["id"] and listed["device"] == "cpu" and listed["free_bytes"] > 0
    assert listed["models"] == [str(cluster.model)] and listed["heartbeat_age_seconds"] < LEASE_SECONDS
    started = time.monotonic()
    assert cluster.http.post(f"{cluster.server.url}/api/v1/jobs/{job['id']}/cancel").status_code == 202
    done = cluster.wait_done(job["id"], timeout=20)
    assert done["state"] == "cancelled" and "nothing was written" in done["error"], done
    assert done["progress"]["step"] < 100 and time.monotonic() - started < 10
    assert cluster.http.get(f"{cluster.server.url}/api/v1/jobs/{job['id']}/video").status_code == 404
    assert cluster.http.post(f"{cluster.server.url}/api/v1/jobs/{job['id']}/cancel").status_code == 409


def test_sigkill_mid_job_finishes_on_the_other_worker_exactly_once(cluster):
    job = cluster.submit(MEDIUM).json()
    running = cluster.wait_running(job["id"])
    victim = running["worker"]
    cluster.workers[victim].signal(signal.SIGKILL)
    done = cluster.wait_done(job["id"], timeout=90)
    assert done["state"] == "succeeded", done
    assert done["attempts"] == 2 and done["worker"] != victim
    assert cluster.history_ids().count(job["id"]) == 1
    assert cluster.http.get(cluster.server.url + done["video_url"]).status_code == 200
    survivor = done["worker"]
    cluster.wait_listed({survivor}, timeout=3 * LEASE_SECONDS)  # the dead worker's entry expires
    cluster.add_worker(victim + "2")


def test_sigterm_hands_the_running_job_back_at_once(cluster):
    names = set(cluster.wait_listed({name for name, worker in cluster.workers.items() if worker.process.poll() is None}))
    job = cluster.submit(MEDIUM).json()
    running = cluster.wait_running(job["id"])
    stopped = time.monotonic()
    cluster.workers[running["worker"]].signal(signal.SIGTERM, wait=False)
    requeued = cluster.wait(job["id"], lambda j: j["attempts"] == 2, timeout=LEASE_SECONDS)
    assert time.monotonic() - stopped < LEASE_SECONDS, "re-queued by the lease timeout, not by the hand-back"
    assert cluster.workers[running["worker"]].process.wait(30) == 0
    done = cluster.wait_done(job["id"], timeout=90)
    assert done["state"] == "succeeded" and done["worker"] == requeued["worker"] != running["worker"]
    assert done["worker"] in names
    cluster.add_worker(running["worker"] + "2")


def test_redis_restart_mid_run_serve_and_workers_reconnect_and_continue(cluster):
    alive = {name for name, worker in cluster.workers.items() if worker.process.poll() is None}
    cluster.wait_listed(alive)
    ids = [cluster.submit({**MEDIUM, "steps": 20, "seed": seed}).json()["id"] for seed in range(6)]
    cluster.wait_running(ids[0])
    cluster.redis.restart(down_seconds=1.0)
    finals = [cluster.wait_done(job_id, timeout=90) for job_id in ids]
    assert [job["state"] for job in finals] == ["succeeded"] * 6, [job["error"] for job in finals]
    history = cluster.history_ids()
    assert all(history.count(job_id) == 1 for job_id in ids)
    after = cluster.submit(SMALL).json()
    assert cluster.wait_done(after["id"])["state"] == "succeeded"
    cluster.wait_listed(alive, timeout=10)


def test_jobs_go_only_to_workers_holding_their_model_and_a_full_queue_answers_429(cluster, tmp_path):
    other_model = shutil.copytree(cluster.model, tmp_path / "tiny-b")
    ids = []
    for seed in range(QUEUE_LIMIT):
        response = cluster.submit({**SMALL, "model": str(other_model), "seed": seed})
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    refused = cluster.submit({**SMALL, "model": str(other_model)})
    assert refused.status_code == 429 and "I2V_QUEUE_LIMIT" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    time.sleep(1)
    assert {cluster.job(job_id)["state"] for job_id in ids} == {"queued"}  # workers a and b hold the other model
    worker = cluster.add_worker("model-b", model=other_model).wait_ready()
    finals = [cluster.wait_done(job_id) for job_id in ids]
    assert {(job["state"], job["worker"]) for job in finals} == {("succeeded", worker.name)}
    assert cluster.workers_listed()["model-b"]["models"] == [str(other_model)]
