"""The `i2v` console script, run as a user runs it."""

import json
import os
import re
import shlex
from pathlib import Path

import av
import pytest
from fake_llm import FakeLLM
from helpers import make_photo, run_cli

from i2v.models.camera_preview.spec import SPEC as CAMERA_PREVIEW
from i2v.models.i2vgenxl.spec import NEGATIVE_PROMPT as DEFAULT_NEGATIVE_PROMPT
from i2v.models.i2vgenxl.spec import SPEC as I2VGENXL


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """The tiny model gains nothing from threads; on 2 shared cores a second OpenMP thread per `i2v` process made
    a 64×64 step take 3 s instead of 30 ms. As conftest does for this process, for the ones these tests start."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return frames, stream.average_rate


def test_generate_writes_mp4_and_metadata(tiny_model, photo_path, tmp_path):
    out = tmp_path / "out.mp4"
    result = run_cli(
        "generate", str(photo_path), "a cat turning its head", "--model", str(tiny_model), "--width", "64",
        "--height", "64", "--frames", "8", "--steps", "3", "--fps", "8", "--seed", "7", "-o", str(out),
    )
    assert result.returncode == 0, result.stderr
    frames, rate = decode(out)
    assert len(frames) == 8 and frames[0].shape == (64, 64, 3) and rate == 8
    metadata = json.loads(out.with_suffix(".json").read_text())
    assert metadata["seed"] == 7
    assert metadata["request"] == {
        "image": str(photo_path),
        "prompt": "a cat turning its head",
        "negative_prompt": DEFAULT_NEGATIVE_PROMPT,  # none typed: the default
        "resolution": "512p",
        "width": 64,
        "height": 64,
        "num_frames": 8,
        "fps": 8,
        "motion_fps": I2VGENXL.motion_fps_for(8, None),  # none typed: the model's, from --fps
        "steps": 3,
        "guidance_scale": 9.0,
        "seed": 7,
        "model": str(tiny_model),
        "scheduler": "ddim",
        "cache": None,  # I2VGen-XL has no step cache
        "allow_degrade": False,
        "refiner": "rules",
        "advice": None,  # the advisor took no part
    }
    assert metadata["refined_prompt"]["source"] == "rules"
    assert "cat" in metadata["conditioning"]["prompt"].lower()
    assert metadata["conditioning"]["negative_prompt"] == metadata["refined_prompt"]["negative_prompt"]
    assert metadata["video"]["motion_fps"] == 8
    assert metadata["model"]["id"] == str(tiny_model)
    assert set(metadata["timings"]) >= {"load", "encode", "denoise", "decode", "write"}
    assert {"torch", "diffusers", "transformers", "av"} <= set(metadata["versions"])
    assert "wrote" in result.stderr and "seed 7" in result.stderr
    assert "Traceback" not in result.stderr


def test_generate_names_the_words_it_left_out_before_denoising(tiny_model, photo_path, tmp_path):
    out = tmp_path / "tunnel.mp4"
    result = run_cli(
        "generate", str(photo_path), "猫在隧道里转头，咕噜噜", "--model", str(tiny_model), "--width", "64",
        "--height", "64", "--frames", "8", "--steps", "1", "-o", str(out),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    said = lines.index("not understood (edit the prompt if they matter): 咕噜噜")
    assert said < next(i for i, line in enumerate(lines) if line.startswith("step "))
    assert result.stderr.count("咕噜噜") == 1
    assert json.loads(out.with_suffix(".json").read_text())["refined_prompt"]["dropped"] == ["咕噜噜"]


def test_seed_is_random_when_absent_and_recorded(tiny_model, photo_path, tmp_path):
    out = tmp_path / "clip.gif"
    result = run_cli(
        "generate", str(photo_path), "waves", "--model", str(tiny_model), "--width", "64", "--height", "64",
        "--frames", "8", "--steps", "2", "-o", str(out),
    )
    assert result.returncode == 0, result.stderr
    metadata = json.loads(out.with_suffix(".json").read_text())
    assert isinstance(metadata["seed"], int) and metadata["request"]["seed"] == metadata["seed"]
    assert metadata["output"]["format"] == "gif"
    assert len(decode(out)[0]) == 8


def test_env_model_is_the_default_and_a_typed_negative_prompt_is_used(tiny_model, photo_path, tmp_path):
    out = tmp_path / "env.webm"
    result = run_cli(
        "generate", str(photo_path), "waves", "--width", "64", "--height", "64", "--frames", "8", "--steps", "2",
        "--seed", "1", "--negative-prompt", "text, watermark", "-o", str(out), env={"I2V_MODEL": str(tiny_model)},
    )
    assert result.returncode == 0, result.stderr
    metadata = json.loads(out.with_suffix(".json").read_text())
    assert metadata["request"]["model"] == str(tiny_model)
    # What the user typed reaches the model in place of the default (and of the refiner's version of it).
    assert metadata["request"]["negative_prompt"] == "text, watermark"
    assert metadata["conditioning"]["negative_prompt"] == "text, watermark"


def bad_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    ("make_args", "expected"),
    [
        # The model's own rules ({model}: how the message names the model, here the tiny I2VGen-XL folder).
        (lambda p, t: [p, "x", "--frames", "40"], "num_frames (--frames): must be between 8 and 32 for {model} (nearest: 32), got 40"),
        (lambda p, t: [p, "x", "--frames", "7"], "num_frames (--frames): must be between 8 and 32 for {model} (nearest: 8), got 7"),
        (lambda p, t: [p, "x", "--fps", "60"], "fps: must be between 4 and 30 for {model}, got 60"),
        (lambda p, t: [p, "x", "--steps", "101"], "steps: must be between 1 and 100 for {model}, got 101"),
        (lambda p, t: [p, "x", "--guidance", "25"], "guidance_scale (--guidance): must be between 1 and 20 for {model}, got 25"),
        (lambda p, t: [p, "x", "--guidance", "0.5"], "guidance_scale (--guidance): must be between 1 and 20 for {model}, got 0.5"),
        (lambda p, t: [p, "x", "--width", "100", "--height", "64"], "width: must be a multiple of 8 for {model}; 64 is best for this model, got 100"),
        (lambda p, t: [p, "x", "--width", "4096", "--height", "64"], "width: must be between 64 and 2048 for {model}, got 4096"),
        (lambda p, t: [p, "x", "--resolution", "4k"], "resolution: must be one of 256p, 512p, 768p, 1024p for {model}, got '4k'"),
        (lambda p, t: [p, "x", "--scheduler", "euler"], "scheduler: must be one of ddim, dpmpp for {model}, got 'euler'"),
        (lambda p, t: [p, "x", "--motion-fps", "2"], "motion_fps (--motion-fps): must be between 4 and 30 for {model}, got 2"),
        # Outside what any model takes: refused by the request itself.
        (lambda p, t: [p, "x", "--steps", "0"],
         "steps: must be between 1 and 1000 for any model (each model narrows this: `i2v models list`), got 0"),
        (lambda p, t: [p, "x", "--seed", "-3"], "seed: must be between 0 and 4294967295, got -3"),
        (lambda p, t: [p, "x", "--width", "64"], "give both width and height"),
        (lambda p, t: [p, "   "], "prompt is empty"),
        (lambda p, t: [p, "x", "-o", str(t / "out.avi")], "must end in .mp4, .webm or .gif"),
        (lambda p, t: [p, "x", "--format", "mov"], "format must be one of mp4, webm, gif"),
        (lambda p, t: [str(t / "missing.png"), "x"], "image not found"),
        (lambda p, t: [bad_file(t, "empty.png", b""), "x"], "image file is empty"),
        (lambda p, t: [bad_file(t, "notes.png", b"hello, not an image"), "x"], "not a supported image"),
        (lambda p, t: [bad_file(t, "cut.png", p_bytes(p)[:700]), "x"], "truncated or corrupt"),
        (lambda p, t: [p, "x", "--model", str(t / "no-such-model")], "no model folder at"),
    ],
)
def test_bad_input_exits_2_with_a_specific_line(photo_path, tmp_path, tiny_model, make_args, expected):
    args = make_args(str(photo_path), tmp_path)
    result = run_cli("generate", *args, "--model", str(tiny_model)) if "--model" not in args else run_cli("generate", *args)
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())  # rich may wrap a long line
    if isinstance(expected, tuple):  # field and range, then the value given, in that order
        assert message.index(expected[0]) < message.index(expected[1]), result.stderr
    else:
        if "{model}" in expected:  # the model's own rule, naming the model by its label, never the folder's path
            expected = expected.replace("{model}", I2VGENXL.label)
            assert str(tiny_model) not in result.stderr
        assert expected in message, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3  # one message (rich may wrap a long line)
    assert not list(tmp_path.glob("*.mp4"))


def p_bytes(path):
    from pathlib import Path

    return Path(path).read_bytes()


def test_over_limit_image_exits_2(tmp_path, tiny_model):
    path = tmp_path / "big.png"
    make_photo(400, 400).save(path)
    result = run_cli("generate", str(path), "x", "--model", str(tiny_model), env={"I2V_MAX_IMAGE_PIXELS": "100000"})
    assert result.returncode == 2
    assert "400×400 = 0.16 megapixels, over the 0.1 MP limit" in result.stderr
    assert "I2V_MAX_IMAGE_PIXELS" in result.stderr


def test_missing_hub_model_says_where_and_how(photo_path, tmp_path):
    result = run_cli(
        "generate", str(photo_path), "x", "--model", "someone/not-downloaded", env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    )
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "'someone/not-downloaded' not found" in message
    assert str(tmp_path / "hf") in message
    assert "i2v models pull someone/not-downloaded" in message and "HF_HOME" in message and "--model PATH" in message


def test_make_tiny_model_and_models_list(tmp_path):
    result = run_cli("make-tiny-model", str(tmp_path / "tiny"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tiny" / "model_index.json").is_file()
    assert (tmp_path / "tiny" / "tokenizer" / "vocab.json").is_file()
    # The command to try is one line to copy (not wrapped at 80 columns off a terminal).
    assert any(line.startswith("wrote a tiny") and line.rstrip().endswith("--steps 3") for line in result.stderr.splitlines()), result.stderr
    listing = run_cli("models", "list", env={"HF_HOME": str(tmp_path / "hf"), "COLUMNS": "200"})
    assert listing.returncode == 0, listing.stderr
    assert "ali-vilab/i2vgen-xl" in listing.stdout and "no (about 6 GB" in listing.stdout


def test_ctrl_c_cancels_cleanly_and_writes_nothing(tiny_model, photo_path, tmp_path):
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "long.mp4"
    script = shutil.which("i2v")
    command = [script] if script else [sys.executable, "-m", "i2v"]
    process = subprocess.Popen(
        [*command, "generate", str(photo_path), "waves", "--model", str(tiny_model), "--width", "64", "--height", "64",
         "--frames", "8", "--steps", "100", "--seed", "1", "-o", str(out)],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if line.startswith("step "):  # denoising has started
            break
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    output = "".join(lines) + rest
    assert process.returncode == 130, output
    assert "cancelling after this step" in output
    assert "cancelled after step" in output and "of 100; nothing was written" in output
    assert "Traceback" not in output
    assert list(tmp_path.glob("long*")) == []


def test_plan_fits_1024p_32_frames_on_24gib_where_the_request_as_given_does_not(photo_path):
    result = run_cli(
        "plan", str(photo_path), "--resolution", "1024p", "--frames", "32", "--steps", "100", "--vram", "24GiB", "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["fits"] is True and report["predicted_peak_bytes"] <= report["budget_bytes"]
    assert report["unconstrained_peak_bytes"] > 24 * 2**30
    assert report["changes"] and all(isinstance(change, str) for change in report["changes"])
    assert {"width", "height", "frames", "dtype", "offload", "cfg_mode", "decode_chunk"} <= set(report["plan"])
    assert report["plan"]["frames"] == 32  # fixed by the user, and the plan fits without touching it
    assert report["predicted_seconds"] > 0 and isinstance(report["warnings"], list)


def test_plan_rejects_a_bad_vram_size(photo_path):
    result = run_cli("plan", str(photo_path), "--vram", "lots")
    assert result.returncode == 2 and "--vram" in result.stderr


def test_plan_may_lower_settings_the_user_did_not_type(photo_path):
    # 1.5 GiB: the default frames and size fit only lowered (at 6 GiB, as before, nothing needed lowering).
    result = run_cli("plan", str(photo_path), "--vram", "1.5GiB", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    typed = json.loads(run_cli("plan", str(photo_path), "--vram", "1.5GiB", "--frames", "16", "--resolution", "512p", "--json").stdout)
    # Typed by the user: left alone without --allow-degrade, and said not to fit rather than changed.
    assert typed["plan"]["frames"] == 16 and typed["fits"] is False
    assert any("you fixed frames and resolution" in warning for warning in typed["warnings"])
    # Left at their defaults: the advisor's to lower until the plan fits.
    assert report["fits"] is True
    assert report["plan"]["frames"] < 16 and report["plan"]["width"] < typed["plan"]["width"]


def test_serve_without_any_worker_is_refused(tmp_path):
    result = run_cli("serve", "--no-local-worker", "--port", "7999", env={"I2V_HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 1 and "needs --queue" in result.stderr


# --- models as plugins: each model's own spec --------------------------------------------------------------

SPECS = {"ali-vilab/i2vgen-xl": I2VGENXL, "camera-preview": CAMERA_PREVIEW}


def test_models_list_json_gives_each_model_with_its_spec(tmp_path):
    from i2v.models.spec import ModelSpec

    result = run_cli("models", "list", "--json", env={"HF_HOME": str(tmp_path / "hf"), "I2V_MODEL": ""})
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(SPECS) <= set(rows)
    for name, spec in SPECS.items():
        row = rows[name]
        assert row["backend"] == spec.backend
        assert row["spec"]["frames"]["min"] == spec.frames.min and row["spec"]["frames"]["max"] == spec.frames.max
        assert row["spec"]["frames"]["default"] == spec.frames.default
        assert row["spec"] == spec.model_dump(mode="json")
        assert ModelSpec.model_validate(row["spec"]) == spec  # the whole spec, round-tripped
    assert rows["ali-vilab/i2vgen-xl"]["default"] is True and rows["camera-preview"]["default"] is False
    assert rows["camera-preview"]["built_in"] is True and rows["camera-preview"]["downloaded"] is True
    assert rows["ali-vilab/i2vgen-xl"]["built_in"] is False and rows["ali-vilab/i2vgen-xl"]["downloaded"] is False
    assert rows["camera-preview"]["spec"]["steps"] is None and rows["camera-preview"]["spec"]["negative_prompt"] is None


def test_a_model_never_pulled_is_not_downloaded_without_asking_diffusers(tmp_path, monkeypatch):
    """`models list` answers "not downloaded" from the Hugging Face cache's layout when no snapshot of the model has
    a model_index.json (no torch, no diffusers: the listing stays quick); a cached snapshot is left to diffusers'
    own check (`resolve`)."""
    from huggingface_hub import constants

    from i2v.models import registry

    asked = []
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(registry, "resolve", lambda model, **_: asked.append(model))
    assert registry.downloaded("camera-preview") and not registry.downloaded("ali-vilab/i2vgen-xl") and asked == []
    repository = registry.repository_for("ali-vilab/i2vgen-xl")
    snapshot = tmp_path / ("models--" + repository.replace("/", "--")) / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    assert registry.downloaded("ali-vilab/i2vgen-xl") and asked == ["ali-vilab/i2vgen-xl"]


def test_models_list_imports_no_torch_diffusers_or_numpy(tmp_path):
    """The listing reads the specs and the cache's layout: a fresh process imports none of the heavy libraries
    (how long it takes is bench/plan_cold.py's business)."""
    import subprocess
    import sys

    script = (
        "import sys\nfrom i2v.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('IMPORTED', [m for m in ('torch', 'diffusers', 'transformers', 'numpy', 'gradio') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", script, "models", "list", "--json"], capture_output=True, text=True,
                          env={**os.environ, "HF_HOME": str(tmp_path / "hf"), "I2V_HOME": str(tmp_path)}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.rstrip().endswith("IMPORTED []"), done.stdout[-500:]
    assert {row["name"] for row in json.loads(done.stdout[: done.stdout.rindex("IMPORTED")])} >= set(SPECS)


def test_generate_help_shows_each_models_own_frame_range():
    result = run_cli("generate", "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.replace("│", " ").split())  # rich's panel borders and wrapping undone
    frames_help = text[text.index("--frames"):text.index("--fps")]
    for name, spec in SPECS.items():
        rule = f"between {spec.frames.min} and {spec.frames.max}, default {spec.frames.default}"
        # Each range beside its own model, named by its id or its label (without the label's aside).
        names = {name, spec.label, spec.label.split(" (")[0]}
        assert any(f"{who}: {rule}" in frames_help for who in names), frames_help
    assert I2VGENXL.frames.max != CAMERA_PREVIEW.frames.max  # two different ranges, each shown as its own


def test_generate_with_camera_preview_writes_a_video(tmp_path):
    from pathlib import Path

    from PIL import Image

    image = Path(__file__).resolve().parents[1] / "examples" / "cat.jpg"
    out = tmp_path / "OUT.mp4"
    result = run_cli("generate", str(image), "镜头向左平移", "--model", "camera-preview", "-o", str(out),
                     env={"HF_HOME": str(tmp_path / "hf")})
    assert result.returncode == 0, result.stderr
    frames, rate = decode(out)
    assert len(frames) == CAMERA_PREVIEW.frames.default
    assert rate == CAMERA_PREVIEW.fps.default
    width, height = CAMERA_PREVIEW.size.target(CAMERA_PREVIEW.size.default_preset, *Image.open(image).size)
    assert frames[0].shape == (height, width, 3)
    metadata = json.loads(out.with_suffix(".json").read_text())
    assert metadata["request"]["model"] == "camera-preview"
    assert metadata["request"]["num_frames"] == CAMERA_PREVIEW.frames.default
    assert metadata["request"]["steps"] is None and metadata["request"]["guidance_scale"] is None
    assert metadata["request"]["scheduler"] is None and metadata["request"]["negative_prompt"] is None
    assert "pan_left" in metadata["refined_prompt"]["tags"]
    assert metadata["refined_prompt"]["negative_prompt"] == ""
    assert "wrote" in result.stderr and "Traceback" not in result.stderr
    with Image.open(out.with_suffix(".jpg")) as thumbnail:  # the job runner's write stage: clip, JSON, thumbnail
        assert thumbnail.format == "JPEG" and max(thumbnail.size) == 256


def test_bad_frames_for_i2vgenxl_exit_2_naming_the_flag_and_its_range(photo_path, tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf"), "I2V_MODEL": ""}
    for args in ([], ["--model", "ali-vilab/i2vgen-xl"]):
        result = run_cli("generate", str(photo_path), "x", "--frames", "40", *args, "-o", str(tmp_path / "out.mp4"), env=env)
        assert result.returncode == 2, result.stderr
        message = " ".join(result.stderr.split())
        assert "--frames" in message
        assert f"between {I2VGENXL.frames.min} and {I2VGENXL.frames.max}" in message
        assert (
            f"num_frames (--frames): must be between {I2VGENXL.frames.min} and {I2VGENXL.frames.max} for {I2VGENXL.label} "
            f"(nearest: {I2VGENXL.frames.max}), got 40" in message
        )
        assert "Traceback" not in result.stderr and "not found" not in message  # refused before any weights are looked for
        assert not list(tmp_path.glob("out*"))


def test_camera_preview_refuses_what_it_does_not_have(photo_path, tmp_path):
    result = run_cli("generate", str(photo_path), "x", "--model", "camera-preview", "--steps", "20", "-o", str(tmp_path / "o.mp4"))
    assert result.returncode == 2, result.stderr
    assert f"steps: {CAMERA_PREVIEW.label} has no steps: it does not denoise; leave steps out" in " ".join(result.stderr.split())
    result = run_cli("generate", str(photo_path), "x", "--model", "camera-preview", "--frames", "241", "-o", str(tmp_path / "o.mp4"))
    assert result.returncode == 2, result.stderr
    assert (
        f"num_frames (--frames): must be between {CAMERA_PREVIEW.frames.min} and {CAMERA_PREVIEW.frames.max} for {CAMERA_PREVIEW.label}"
        in " ".join(result.stderr.split())
    )
    assert not list(tmp_path.glob("o*"))


@pytest.mark.parametrize(("frames", "nearest"), [(10, "9 or 13"), (122, "121"), (4, "5")])
def test_a_wan_frame_count_off_its_4k_plus_1_rule_exits_2_naming_the_rule_and_the_nearest(photo_path, tmp_path, wan_tiny_model, frames, nearest):
    """Wan 2.2's VAE compresses time 4×: a count that is not 4k+1 is refused before anything loads."""
    from i2v.models.wan22.spec import SPEC as WAN

    result = run_cli("generate", str(photo_path), "x", "--model", str(wan_tiny_model), "--frames", str(frames),
                     "-o", str(tmp_path / "clip.mp4"))
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr
    assert (f"num_frames (--frames): must be 4k+1 between 5 and 121 for {WAN.label} (nearest: {nearest}), got {frames}"
            in message), result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.glob("*.mp4"))


def _commands(group, path=()):
    """Every command of the click tree under `group`, with its path, and its typer CommandInfo's callback."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _written_help(callback):
    """The help texts as the source writes them (before any rendering), by parameter name."""
    from typer.utils import get_params_from_function

    return {name: meta.default.help for name, meta in get_params_from_function(callback).items()
            if getattr(meta.default, "help", None)}


def test_every_commands_help_shows_its_text_whole():
    """Typer reads help as Rich markup: `[default: …]` and `[env …]` vanished from it, leaving "gif ."; flags
    showed `<bool>` and usage lines `{image}`. Every command's --help must show each text as written."""
    import re

    import typer
    from typer.testing import CliRunner

    from i2v.cli import app

    callbacks = {(info.name or info.callback.__name__.replace("_", "-"),): info.callback for info in app.registered_commands}
    for group in app.registered_groups:
        callbacks |= {(group.name, info.name): info.callback for info in group.typer_instance.registered_commands}
    commands = dict(_commands(typer.main.get_command(app)))
    assert set(commands) == set(callbacks) and len(commands) >= 8
    assert {("assess",), ("troubleshoot",)} <= set(commands)  # cli_advice's commands, in one help style with the rest
    runner = CliRunner()
    for path, command in [((), None), *commands.items()]:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        lines = [line.strip(" │╭╮╰╯─") for line in result.stdout.splitlines()]
        text = " ".join(" ".join(lines).split())
        where = " ".join(path) or "i2v"
        assert not re.search(r"\s[.,;:](\s|$)", text), f"{where}: dangling punctuation: {text}"
        assert "<bool>" not in text and "{" not in next(line for line in lines if "Usage:" in line), where
        for line in lines:
            assert line.count("[") == line.count("]"), f"{where}: {line}"
        assert text.count("[default:") == len(re.findall(r"\[default: [^\]\s][^\]]*\]", text)), where
        # One style: "Sentence. [default: …]" and "[env var: …]", never "…) [default: …]." nor "[env I2V_…]".
        assert not re.search(r"\[(default|env var):[^\]]*\]\.", text), f"{where}: a period after [default/env var: …]: {text}"
        assert not re.search(r"\[env (?!var:)", text), f"{where}: [env …] instead of [env var: …]: {text}"
        assert not re.search(r"[\w)] \[default:", text), f"{where}: [default: …] not after a sentence's end: {text}"
        if command is None:
            continue
        usage = next(line for line in lines if "Usage:" in line)
        for param in command.params:
            if param.param_type_name == "argument":
                assert (param.name.upper() if param.required else f"[{param.name.upper()}]") in usage, usage
        for name, written in _written_help(callbacks[path]).items():
            assert " ".join(written.split()) in text, f"{where} --{name}: {written!r} not shown whole"


def test_a_device_this_machine_lacks_exits_2_naming_its_devices_before_loading(photo_path, tmp_path):
    """Checked before the model is even looked for (the default model is not downloaded here)."""
    from typer.testing import CliRunner

    from i2v.cli import app
    from i2v.models.loading import available_devices

    env = {"HF_HOME": str(tmp_path / "hf"), "I2V_MODEL": ""}
    for device in ("cuda:99", "mps:0" if "mps" not in available_devices() else "cuda:99"):
        result = CliRunner().invoke(app, ["generate", str(photo_path), "x", "--device", device, "-o", str(tmp_path / "out.mp4")], env=env)
        message = " ".join(result.stderr.split())
        assert result.exit_code == 2, result.output
        assert f"devices here: {', '.join(available_devices())}" in message
        assert "loading" not in message and "not found" not in message and "Traceback" not in message
    if "cuda:0" not in available_devices():  # `plan` probed the CPU instead, unless planning for a given card
        result = CliRunner().invoke(app, ["plan", str(photo_path), "--device", "cuda"], env=env)
        assert result.exit_code == 2 and "devices here: " in result.stderr, result.output
        assert CliRunner().invoke(app, ["plan", str(photo_path), "--device", "cuda", "--vram", "24GiB"], env=env).exit_code == 0
    result = CliRunner().invoke(app, ["generate", str(photo_path), "x", "--dtype", "fp8"], env=env)
    assert result.exit_code == 2 and "--dtype must be fp32, bf16 or fp16, got 'fp8'" in result.stderr
    assert not list(tmp_path.glob("out*"))


def test_llm_settings_line_names_the_endpoint_model_and_key(monkeypatch):
    from i2v.cli import describe_llm
    from i2v.refine.llm import LLMSettings

    for name in ("I2V_LLM_PRESET", "I2V_LLM_BASE_URL", "I2V_LLM_MODEL", "I2V_LLM_API_KEY", "I2V_LLM_VISION", "MOONSHOT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    # Nothing configured: Kimi's endpoint, said as such, and the variable its key is read from.
    line = describe_llm(LLMSettings())
    assert "nothing configured, so the kimi preset: https://api.moonshot.cn/v1" in line
    assert "key from MOONSHOT_API_KEY (not set)" in line and "--llm or --llm-base-url" in line
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-secret")
    assert "key from MOONSHOT_API_KEY (set)" in describe_llm(LLMSettings()) and "sk-secret" not in describe_llm(LLMSettings())
    custom = LLMSettings(base_url="http://127.0.0.1:8000/v1", model="my-model")
    assert "text only; --llm-vision if it takes images" in describe_llm(custom)
    assert "my-model (takes images)" in describe_llm(LLMSettings(base_url="http://127.0.0.1:8000/v1", model="my-model", vision=True))
    assert "no key" in describe_llm(LLMSettings(preset="ollama"))


def test_llm_refine_sends_the_image_with_llm_vision_and_says_a_fallback_once(photo_path, tmp_path, caplog):
    """--llm-vision makes a custom model get the image. A failed call is said once, as a note: it was also logged
    as a warning, which Python prints to stderr when, as in the CLI, no log handler is set."""
    import logging

    from typer.testing import CliRunner

    from i2v.cli import app

    caplog.set_level(logging.INFO, logger="i2v")
    env = {"I2V_HOME": str(tmp_path), "MOONSHOT_API_KEY": "", "I2V_LLM_API_KEY": "sk-test"}
    with FakeLLM() as fake:
        common = ["refine", "猫转头", "--refiner", "llm", "--llm-base-url", fake.base_url, "--image", str(photo_path)]
        vision = CliRunner().invoke(app, [*common, "--llm-model", "my-model", "--llm-vision", "--json"], env=env)
        fails = CliRunner().invoke(app, [*common, "--llm-model", "401"], env=env)
        sent = {request["model"]: request for request in fake.requests}
    assert vision.exit_code == 0 and fails.exit_code == 0, vision.output + fails.output
    assert json.loads(vision.stdout)["source"].startswith("llm:")
    assert f"llm: {fake.base_url}, model my-model (takes images), key from I2V_LLM_API_KEY (set)" in vision.stderr
    assert "image_url" in json.dumps(sent["my-model"]["messages"])
    assert fails.stderr.count("LLM refiner not used") == 1 and "401" in fails.stderr, fails.stderr
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING and "LLM" in record.getMessage()]


ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Commands that only read files they are given; paths after these options are written, not read.
OUTPUT_OPTIONS = {"-o", "--output"}


def _readme_commands() -> list[list[str]]:
    """Every simple command in the README's ```bash blocks, as argv lists (pipes, &&, ;, &, $( ) and
    subshells split apart; comments dropped; leading VAR=value assignments kept)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars="();<>|&")
            lexer.whitespace_split, lexer.commenters = True, "#"
            command: list[str] = []
            for token in [*lexer, ";"]:
                if token.strip("();|&") == "" or token.endswith("=$"):
                    if command:
                        commands.append(command)
                    command = []
                else:
                    command.append(token)
    return commands


def _click_command(argv: list[str]):
    """The click command an `i2v …` argv names, and the arguments left for it."""
    import typer

    from i2v.cli import app

    command, args = typer.main.get_command(app), argv[1:]
    while hasattr(command, "commands"):
        assert args and args[0] in command.commands, f"no such i2v command: {' '.join(argv)}"
        command, args = command.commands[args[0]], args[1:]
    return command, args


def test_every_readme_command_names_files_that_exist_and_options_the_cli_takes():
    """Each command in the README runs as written from the repository root: every file it reads exists (or an
    earlier README command makes it), and every `i2v` line parses with the CLI (no run, no model)."""
    made: set[str] = set()
    commands = _readme_commands()
    assert any(command[:1] == ["i2v"] for command in commands) and len(commands) > 30
    for argv in commands:
        while argv and re.match(r"^\w+=", argv[0]):  # VAR=value before the command
            argv = argv[1:]
        if not argv:
            continue
        where = " ".join(argv)
        if ">" in argv:  # echo … > FILE makes FILE
            made.add(os.path.expanduser(argv[argv.index(">") + 1]))
            argv = argv[:argv.index(">")]
        reads = [token for token in argv if re.match(r"^(examples|bench|scripts|docs|tests)/", token)]
        if argv[0] == "i2v":
            command, args = _click_command(argv)
            ctx = command.make_context(" ".join(argv[:2]), list(args))  # unknown options, bad values: UsageError
            params = ctx.params
            if command.name == "make-tiny-model":
                made.add(str(params["folder"]))
            reads += [str(params[name]) for name in ("image", "queue_file") if params.get(name) is not None]
            model = params.get("model")
            if model and model.startswith(("/", ".", "~")):
                reads.append(model)
            outputs = {argv[i + 1] for i, token in enumerate(argv[:-1]) if token in OUTPUT_OPTIONS}
            reads = [path for path in reads if path not in outputs]
        elif argv[0] == "curl":
            reads += [token.split("=@", 1)[1] for token in argv if "=@" in token]
        elif argv[0] in ("bash", "python") and len(argv) > 1 and not argv[1].startswith("-"):
            reads.append(argv[1])
        for path in reads:
            path = os.path.expanduser(path)
            assert path in made or (ROOT / path).exists(), f"{where}: {path} does not exist"


def test_readme_inline_commands_use_options_the_cli_takes_and_links_stay_in_the_repository():
    text = README.read_text()
    for span in re.findall(r"`(i2v [^`]+)`", text):
        words = span.replace("…", "").split()
        path = [word for word in words[1:3] if re.fullmatch(r"[a-z-]+", word)]
        try:
            command, _ = _click_command(["i2v", *path])
        except AssertionError:
            command, _ = _click_command(["i2v", *path[:1]])
        known = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]} | {"--help"}
        for word in words:
            if word.startswith("-") and not word.startswith("---"):
                assert word.split("=")[0] in known, f"`{span}`: {word} is not an option of i2v {command.name}"
    for link in re.findall(r"\]\(([^)#\s]+)", text):
        assert "://" not in link, f"link {link} leaves the repository: the README stands on its own"
        target = (ROOT / link).resolve()
        assert target.is_relative_to(ROOT) and target.exists(), f"link {link} leaves the repository or is missing"
    for path in re.findall(r"\bexamples/[\w.-]+", text):
        assert (ROOT / path).exists(), path
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest -q" in text and ci.rstrip().endswith("python -m pytest -q")


def test_migrations_say_nothing_below_a_warning(tmp_path, caplog):
    """`i2v serve` used to open with a dozen `INFO alembic…` lines (one per migration step)."""
    import logging

    from i2v.jobs.store import migrate

    caplog.set_level(logging.INFO)
    migrate(f"sqlite:///{tmp_path / 'jobs.db'}")
    assert (tmp_path / "jobs.db").is_file()
    assert not [record for record in caplog.records if record.name.startswith("alembic") and record.levelno < logging.WARNING]
    assert logging.getLogger("alembic").getEffectiveLevel() == logging.WARNING  # its warnings and errors still show
