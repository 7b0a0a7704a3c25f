"""Scaling out on a real redis-server: a serve node without a local worker, `i2v worker` processes on the CPU with
the tiny model, and the failures that matter (a worker killed or frozen mid-job or between taking a job and starting
it, a cancel early or too late, Redis restarting, a model no worker holds). The Redis server has a password, which
the processes read from a file, as an operator should pass it."""

import io
import json
import os
import shutil
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import av
import pytest
import redis
from helpers import (
    LATE_CANCEL,
    JobClient,
    RedisServer,
    ServerProcess,
    WorkerProcess,
    eventually,
    free_port,
    i2v_command,
    run_together,
    worker_command,
)

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None and not os.environ.get("CI"),
    reason="redis-server is not installed (apt install redis-server); these tests need a real Redis",
)

SMALL = {"prompt": "猫转头", "width": 64, "height": 64, "num_frames": 8, "steps": 3, "fps": 8}
MEDIUM = {"prompt": "waves", "width": 128, "height": 128, "num_frames": 16, "steps": 60, "fps": 8}  # ≈6 s, 1 thread
LONG = {"prompt": "waves", "width": 256, "height": 256, "num_frames": 32, "steps": 100, "fps": 8}  # ≈90 s
BUILT_IN = {"camera-preview"}
LEASE_SECONDS = 3
QUEUE_LIMIT = 10
PASSWORD = "pw-only-in-a-file"


class Cluster(JobClient):
    """One Redis, one `serve --no-local-worker` node, and named CPU workers: `a` and `b` hold the tiny model,
    `model-b` a copy of it under another name; a third copy is offered (I2V_MODELS) but held by no worker."""

    def __init__(self, folder, model):
        self.folder, self.model = folder, model
        self.other_model = shutil.copytree(model, folder / "tiny-b")
        self.unheld_model = shutil.copytree(model, folder / "tiny-c")
        self.redis = RedisServer(folder, password=PASSWORD).start()
        self.url_file = folder / "queue-url"
        self.url_file.write_text(self.redis.url + "\n")
        self.url_file.chmod(0o600)
        env = {"I2V_QUEUE_URL_FILE": str(self.url_file), "I2V_LEASE_SECONDS": str(LEASE_SECONDS),
               "I2V_QUEUE_LIMIT": str(QUEUE_LIMIT), "I2V_MODELS": f"{self.other_model},{self.unheld_model}"}
        self.server = ServerProcess(folder / "serve-home", model, env=env, args=("--no-local-worker",))
        (folder / "serve-home").mkdir()
        super().__init__(self.server.url)
        self.workers: dict[str, WorkerProcess] = {}

    def add_worker(self, name: str, model=None) -> WorkerProcess:
        worker = WorkerProcess(self.folder, str(self.url_file), model or self.model, name,
                               env={"I2V_LEASE_SECONDS": str(LEASE_SECONDS)}, queue_is_file=True)
        self.workers[name] = worker.start()
        return worker

    def server_log(self) -> str:
        return (self.server.home / "server-test.log").read_text(encoding="utf-8", errors="replace")

    def wait_running(self, job_id: str) -> dict:
        return self.wait(job_id, lambda job: job["state"] == "running" and job["progress"].get("step", 0) > 0)

    def workers_listed(self) -> dict[str, dict]:
        """The GPU pool's workers (the serve node's own model-free ones, e.g. camera-preview, left out)."""
        listed = self.http.get(self.server.url + "/api/v1/workers").json()["workers"]
        return {worker["name"]: worker for worker in listed if not set(worker["models"]) <= BUILT_IN}

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

    def alive(self) -> set[str]:
        return {name for name, worker in self.workers.items() if worker.process.poll() is None}

    def close(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        self.server.stop()
        self.redis.stop()
        super().close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, tiny_model):
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), tiny_model)
    try:
        for name in ("a", "b"):
            cluster.add_worker(name)  # they load torch and the model while the serve node starts
        cluster.add_worker("model-b", model=cluster.other_model)
        cluster.server.start()
        for worker in cluster.workers.values():
            worker.wait_ready()
        cluster.wait_listed({"a", "b", "model-b"})
        yield cluster
    finally:
        cluster.close()


@contextmanager
def busy(cluster):
    """Every worker runs a LONG job of its model meanwhile, so new jobs wait in their model's queue."""
    listed = cluster.workers_listed().values()
    ids = [cluster.submit({**LONG, "model": worker["models"][0], "seed": seed}).json()["id"] for seed, worker in enumerate(listed)]
    for job_id in ids:
        cluster.wait(job_id, lambda job: job["state"] == "running")
    try:
        yield
    finally:
        for job_id in ids:
            cluster.cancel(job_id)


def test_worker_and_serve_fail_in_one_line_when_they_cannot_start(tmp_path):
    import torch

    port = free_port()
    dead = f"redis://127.0.0.1:{port}/0"
    runs = {
        "password": ([*worker_command(), "--queue", f"redis://:{PASSWORD}@127.0.0.1:{port}/0", "--device", "cpu"], {}),
        "both": ([*worker_command(), "--queue", dead, "--gpu", "0", "--device", "cpu"], {}),
        "serve": (i2v_command("serve", "--port", str(free_port()), "--no-local-worker"), {"I2V_HOME": str(tmp_path), "I2V_QUEUE_URL": dead}),
    }
    if not torch.cuda.is_available():
        runs["no_gpu"] = ([*worker_command(), "--queue", dead, "--gpu", "0"], {})
    results = run_together(runs)
    warning, error = results["password"].stderr.strip().splitlines()
    assert results["password"].returncode == 1 and "password in --queue is visible to every user" in warning and "--queue-file" in warning
    assert f"cannot reach Redis at redis://127.0.0.1:{port}/0" in error and PASSWORD not in error
    assert results["both"].returncode == 1 and "not both" in results["both"].stderr
    if "no_gpu" in results:
        assert results["no_gpu"].returncode == 1 and "--gpu 0: no CUDA GPU 0" in results["no_gpu"].stderr
    assert results["serve"].returncode == 1 and "cannot reach Redis" in results["serve"].stderr


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
        assert metadata["output"]["url"] == job["video_url"] and (outputs / f"{job['id']}.mp4").is_file()
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
    assert listed["models"] == [str(cluster.model)] and listed["heartbeat_age_seconds"] >= 0
    # It keeps heartbeating while it runs the job: a later entry has a later heartbeat, still on this job.
    later = eventually(lambda: (entry := cluster.workers_listed()[running["worker"]])["last_heartbeat"] > listed["last_heartbeat"] and entry)
    assert later["current_job"] == job["id"]
    assert cluster.http.post(f"{cluster.server.url}/api/v1/jobs/{job['id']}/cancel").status_code == 202
    done = cluster.wait_done(job["id"], timeout=20)
    assert done["state"] == "cancelled" and "nothing was written" in done["error"], done
    assert done["progress"]["step"] < 100  # stopped between steps, long before the run's end
    assert cluster.http.get(f"{cluster.server.url}/api/v1/jobs/{job['id']}/video").status_code == 404
    assert cluster.http.post(f"{cluster.server.url}/api/v1/jobs/{job['id']}/cancel").status_code == 409


def test_a_cancel_after_the_last_step_keeps_the_clip_and_says_so(cluster):
    done = cluster.cancel_during_last_step()
    assert done["state"] == "succeeded" and done["warnings"][-1] == LATE_CANCEL, done
    assert cluster.http.get(cluster.server.url + done["video_url"]).status_code == 200


def test_no_process_shows_the_redis_password_on_its_command_line(cluster):
    for process in [cluster.server.process, *(worker.process for worker in cluster.workers.values())]:
        with open(f"/proc/{process.pid}/cmdline", "rb") as cmdline:
            assert PASSWORD.encode() not in cmdline.read()
    assert "password in --queue" not in cluster.server_log()


def test_models_no_worker_holds_are_refused_and_queues_are_per_model(cluster):
    with busy(cluster):
        unheld = cluster.submit({**SMALL, "model": str(cluster.unheld_model)})
        assert unheld.status_code == 422 and unheld.json()["code"] == "model_not_served", unheld.text
        assert f"no live worker holds model {str(cluster.unheld_model)!r}" in unheld.json()["detail"]
        assert str(cluster.model) in unheld.json()["detail"] and str(cluster.other_model) in unheld.json()["detail"]
        waiting = [cluster.submit({**SMALL, "seed": seed}).json() for seed in range(QUEUE_LIMIT)]
        assert [job["queue_position"] for job in waiting] == list(range(1, QUEUE_LIMIT + 1))
        refused = cluster.submit(SMALL)
        assert refused.status_code == 429 and f"waiting for {cluster.model}" in refused.json()["detail"], refused.text
        assert int(refused.headers["retry-after"]) >= 1
        other = cluster.submit({**SMALL, "model": str(cluster.other_model)})
        assert other.status_code == 202 and other.json()["queue_position"] == 1, other.text
        for job in waiting:
            assert cluster.cancel(job["id"]).status_code == 202
    done = cluster.wait_done(other.json()["id"])
    assert done["state"] == "succeeded" and done["worker"] == "model-b", done


def test_a_job_whose_message_left_with_a_killed_worker_is_sent_again(cluster):
    from i2v.jobs.redis_shared import model_queue

    client = redis.Redis.from_url(cluster.redis.url)
    with busy(cluster):
        job = cluster.submit(SMALL).json()
        huey, _ = model_queue(client, str(cluster.model), lambda payload: None)
        assert client.rpop(huey.storage.queue_key) is not None  # what a worker killed before taking the lease took
    done = cluster.wait_done(job["id"], timeout=10 * LEASE_SECONDS)
    assert done["state"] == "succeeded" and done["attempts"] == 1, done
    assert f"job {job['id']}: a worker took its queue message and stopped before starting it; sent again" in cluster.server_log()
    client.close()


def test_a_frozen_workers_dropped_result_is_not_counted(cluster):
    job = cluster.submit({**MEDIUM, "steps": 20}).json()
    running = cluster.wait_running(job["id"])
    frozen = cluster.workers[running["worker"]]
    done_before = cluster.workers_listed()[frozen.name]["jobs_done"]
    frozen.signal(signal.SIGSTOP, wait=False)
    try:
        cluster.wait(job["id"], lambda j: j["attempts"] == 2, timeout=10 * LEASE_SECONDS)  # re-queued to another worker
    finally:
        frozen.signal(signal.SIGCONT, wait=False)
    eventually(lambda: f"dropping the result of job {job['id']}" in frozen.log())
    entry = eventually(lambda: _idle_entry(cluster, frozen.name))
    assert entry["jobs_done"] == done_before, entry
    done = cluster.wait_done(job["id"])
    assert done["state"] == "succeeded" and done["worker"] != frozen.name


def _idle_entry(cluster, name: str) -> dict | None:
    """The worker's registry entry once it runs no job."""
    entry = cluster.workers_listed().get(name)
    return entry if entry is not None and entry["current_job"] is None else None


def test_sigkill_mid_job_finishes_on_the_other_worker_exactly_once(cluster):
    job = cluster.submit({**MEDIUM, "steps": 20}).json()
    running = cluster.wait_running(job["id"])
    victim = running["worker"]
    cluster.workers[victim].signal(signal.SIGKILL)
    done = cluster.wait_done(job["id"], timeout=90)
    assert done["state"] == "succeeded", done
    assert done["attempts"] == 2 and done["worker"] != victim
    assert cluster.history_ids().count(job["id"]) == 1
    assert cluster.http.get(cluster.server.url + done["video_url"]).status_code == 200
    cluster.wait_listed(cluster.alive(), timeout=3 * LEASE_SECONDS)  # the dead worker's entry expires
    cluster.add_worker(victim + "2")


def test_sigterm_hands_the_running_job_back_at_once(cluster):
    names = set(cluster.wait_listed(cluster.alive()))
    job = cluster.submit({**MEDIUM, "steps": 20}).json()
    running = cluster.wait_running(job["id"])
    stopping = cluster.workers[running["worker"]]
    stopping.signal(signal.SIGTERM, wait=False)
    requeued = cluster.wait(job["id"], lambda j: j["attempts"] == 2)
    # Handed back by the worker itself (its `interrupted` event, before its lease could lapse), not re-queued by
    # the serve node when the lease lapsed: which of the two re-queued it is the outcome, however long it took.
    serve_log = cluster.server_log()
    assert f"job {job['id']}: worker {running['worker']} stopped; re-queued" in serve_log
    assert f"job {job['id']}: its worker stopped heartbeating" not in serve_log
    assert stopping.process.wait(30) == 0
    assert f"handed job {job['id']} back to the queue" in stopping.log()
    done = cluster.wait_done(job["id"], timeout=90)
    assert done["state"] == "succeeded" and done["worker"] == requeued["worker"] != running["worker"]
    assert done["worker"] in names
    cluster.add_worker(running["worker"] + "2")


def test_redis_restart_mid_run_serve_and_workers_reconnect_and_continue(cluster):
    alive = cluster.alive()
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


def test_camera_preview_runs_on_the_serve_node_with_no_worker_holding_it(cluster):
    """A model-free preview needs no GPU worker: the serve node draws it itself, under its own worker entry."""
    listed = cluster.http.get(cluster.server.url + "/api/v1/workers").json()["workers"]
    own = [worker for worker in listed if worker["models"] == ["camera-preview"]]
    assert len(own) == 1 and own[0]["name"].endswith("/camera-preview"), listed
    fields = {key: value for key, value in SMALL.items() if key != "steps"}
    job = cluster.submit({**fields, "prompt": "镜头向左平移", "model": "camera-preview"})
    assert job.status_code == 202 and job.json()["warnings"] == [], job.text
    done = cluster.wait_done(job.json()["id"])
    assert done["state"] == "succeeded" and done["worker"] == own[0]["name"], done
    assert done["refined_prompt"]["tags"] == ["pan_left"]
    with av.open(io.BytesIO(cluster.http.get(cluster.server.url + done["video_url"]).content)) as container:
        assert sum(1 for _ in container.decode(video=0)) == SMALL["num_frames"]


def test_with_no_worker_connected_a_job_is_accepted_and_says_what_it_waits_for(cluster):
    """Last in this module: it stops every worker."""
    for worker in cluster.workers.values():
        worker.process.terminate()  # side by side; each deletes its registry entry as it goes
    for worker in cluster.workers.values():
        worker.stop()
    cluster.wait_listed(set(), timeout=3 * LEASE_SECONDS)
    job = cluster.submit(SMALL).json()
    # A local model folder is named by its folder's name: a client never sees a server path.
    waits = f"no worker is connected yet; the job waits for one holding {Path(cluster.model).name}"
    assert job["state"] == "queued" and job["queue_position"] == 1 and job["warnings"] == [waits], job
    with cluster.http.stream("GET", f"{cluster.server.url}/api/v1/jobs/{job['id']}/events") as events:
        data = next(line for line in events.iter_lines() if line.startswith("data:"))
    assert json.loads(data.removeprefix("data:"))["warnings"] == [waits]


def test_a_forged_result_cannot_point_a_job_at_a_file_of_the_serve_node(tmp_path):
    """Anyone who can write to Redis can publish events; a `finished` event's values must never set file paths
    on the serve node (which would then serve /etc/hostname as the job's video)."""
    from i2v.jobs.redis_dispatch import RedisJobQueue
    from i2v.jobs.redis_shared import Event
    from i2v.jobs.store import JobStore

    store = JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    job = store.create({"prompt": "x", "steps": 3}, str(tmp_path / "in.png"))
    running = store.claim(job.id, "w1")
    queue = object.__new__(RedisJobQueue)
    queue.store, queue.outputs = store, tmp_path / "outputs"
    queue.client = type("NoRedis", (), {"delete": lambda self, *keys: 0})()
    forged = {"video_path": "/etc/hostname", "metadata_path": "/etc/passwd", "thumbnail_path": "/etc/hostname", "error": "boom"}
    queue._finish(running, Event(job.id, running.attempts, "finished", "w1", {"state": "failed", "values": forged}))
    finished = store.get(job.id)
    assert finished.state == "failed" and finished.error == "boom"
    assert (finished.video_path, finished.metadata_path, finished.thumbnail_path) == (None, None, None)
    queue._finish(running, Event(job.id, running.attempts, "finished", "w1", {"state": "running", "values": {}}))
    assert store.get(job.id).state == "failed"
