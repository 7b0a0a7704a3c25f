"""Damaged files under a real `i2v serve` (embedded queue): a damaged job database stops the server at start-up in
one line that names the file and what to do, whether it is garbage or a real database broken mid-file; damage found
while serving answers 503 with the same advice; a damaged queue file is rebuilt from the job table. Also the
embedded queue's answer to a cancel that arrives after the last denoising step."""

import random
import sqlite3
from contextlib import closing

import pytest
from helpers import LATE_CANCEL, JobClient, ServerProcess, free_port, i2v_command, png_bytes, run_together

SMALL = {"prompt": "waves", "width": 64, "height": 64, "num_frames": 8, "steps": 3, "fps": 8}
OLD_JOBS = 120  # about ten leaf pages of the jobs table: the oldest ones can break while the newest still read


def make_job_db(home, model) -> str:
    """A real job database, as a server that ran for a while leaves it: OLD_JOBS finished jobs and one still queued
    (returned)."""
    from i2v.jobs.store import JobStore

    uploads = home / "uploads"
    uploads.mkdir(parents=True)
    image = uploads / "old.png"
    image.write_bytes(png_bytes())
    store = JobStore(f"sqlite:///{home / 'i2v.sqlite'}")
    request = {**SMALL, "model": str(model), "image": str(image)}
    for index in range(OLD_JOBS):
        job = store.create({**request, "prompt": f"old job {index}"}, str(image))
        store.finish(job.id, "succeeded")
    queued = store.create(request, str(image))
    store.engine.dispose()
    return queued.id


def break_oldest_pages(path, pages: int = 3) -> None:
    """Overwrite the middle half of the jobs table's first leaf pages (its oldest rows), after moving everything the
    write-ahead log holds into the file."""
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        leaves = connection.execute("SELECT pageno FROM dbstat WHERE name = 'jobs' AND pagetype = 'leaf' ORDER BY path").fetchall()
        size = connection.execute("PRAGMA page_size").fetchone()[0]
    noise = random.Random(0)
    with open(path, "r+b") as handle:
        for (page,) in leaves[:pages]:
            handle.seek((page - 1) * size + size // 4)
            handle.write(noise.randbytes(size // 2))


def test_a_damaged_job_database_stops_the_server_in_one_line(tmp_path, tiny_model):
    garbage, broken = tmp_path / "garbage", tmp_path / "broken"
    garbage.mkdir()
    (garbage / "i2v.sqlite").write_bytes(b"these are not the pages you are looking for\n" * 200)
    make_job_db(broken, tiny_model)
    break_oldest_pages(broken / "i2v.sqlite")
    runs = run_together({home: (i2v_command("serve", "--port", str(free_port())), {"I2V_HOME": str(home), "I2V_MODEL": str(tiny_model)})
                         for home in (garbage, broken)})
    errors = {}
    for home, result in runs.items():
        out, err = result.stdout, result.stderr
        assert result.returncode == 1 and "Traceback" not in out + err and err.count("error:") == 1, (out, err)
        errors[home] = " ".join(err.split())  # one line, wrapped by the console to the terminal's width
        assert f"the job database {home / 'i2v.sqlite'} is damaged" in errors[home], err
        assert "restore it from a backup, or stop the server and move it (with its -wal and -shm files) aside" in errors[home]
    assert "(file is not a database)" in errors[garbage]


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    """A server whose job table holds OLD_JOBS finished jobs and one queued (yielded), beside a garbage queue file."""
    home = tmp_path_factory.mktemp("faults")
    queued = make_job_db(home, tiny_model)
    (home / "queue.sqlite").write_bytes(b"\x00garbage\xff" * 500)
    process = ServerProcess(home, tiny_model, env={"OMP_NUM_THREADS": "1"}).start()  # no thread spinning on shared cores
    client = JobClient(process.url)
    yield process, client, queued
    client.close()
    process.stop()


def test_a_damaged_queue_file_is_rebuilt_from_the_job_table(server):
    process, client, queued = server
    log = (process.home / "server-test.log").read_text(errors="replace")
    assert f"the queue file {process.home / 'queue.sqlite'} was damaged (file is not a database)" in log
    assert "queued jobs are sent again from the job table" in log
    assert client.wait_done(queued)["state"] == "succeeded"


def test_a_cancel_after_the_last_step_keeps_the_clip_on_the_embedded_queue(server):
    process, client, _ = server
    done = client.cancel_during_last_step()
    assert done["state"] == "succeeded" and done["warnings"][-1] == LATE_CANCEL, done
    assert client.http.get(process.url + done["video_url"]).status_code == 200


def test_damage_found_while_serving_answers_503_with_the_advice(server):
    """Last in this module: it breaks the server's database."""
    process, client, _ = server
    newest = client.http.get(process.url + "/api/v1/jobs", params={"limit": 5})
    assert newest.status_code == 200 and newest.json()["total"] > OLD_JOBS
    break_oldest_pages(process.home / "i2v.sqlite")
    history = client.http.get(process.url + "/api/v1/jobs", params={"limit": 200})
    assert history.status_code == 503 and history.json()["code"] == "store_unavailable", history.text
    detail = history.json()["detail"]
    assert detail.startswith("the job database i2v.sqlite is damaged (database disk image is malformed)"), detail
    assert "restore it from a backup" in detail and str(process.home) not in detail
    log = (process.home / "server-test.log").read_text(errors="replace")
    assert f"the job database {process.home / 'i2v.sqlite'} is damaged" in log
