"""`i2v assess` and `i2v troubleshoot` in process (typer's runner over the commands as the main app registers
them): happy paths, --json, and user mistakes as one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from helpers import make_photo
from typer.testing import CliRunner

from i2v.cli import user_errors
from i2v.cli_advice import generate_command, tier_request, register
from i2v.request import GenerationRequest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cat.jpg"


@pytest.fixture(scope="module")
def cli():
    app = typer.Typer()
    register(app, user_errors)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(arg) for arg in args])


def test_assess_prints_the_figures_the_recommendation_and_the_command(cli):
    result = cli("assess", EXAMPLE, "a cat turns its head")
    assert result.exit_code == 0, result.output
    assert "Image assessment for I2VGen-XL (offline)" in result.output and "451×300" in result.output
    assert "Recommended: fast" in result.output and "no GPU here" in result.output  # this machine has no GPU
    assert "512p: the preset's size" in result.output and "640×448" in result.output
    assert "run it: i2v generate" in result.output and "'a cat turns its head' --preset fast" in result.output


def test_assess_json_and_a_planned_card(cli):
    result = cli("assess", EXAMPLE, "--json", "--vram", "24GiB", "--model", "camera-preview")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["assessment"]["model"].startswith("Camera preview") and body["refined"] is None
    assert body["recommendation"]["preset"] == "quality" and "fits on" in body["recommendation"]["preset_reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("assess", "missing.jpg"), "image not found"),
        (("assess", EXAMPLE, "--refiner", "gpt"), "--refiner must be rules or llm"),
        (("troubleshoot", "clip.json", "--symptom", "flicker"), "is not a file"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_troubleshoot_a_clip_prints_the_changes_and_the_next_command(cli, tmp_path):
    from i2v.generation import generate

    image = tmp_path / "photo.png"
    make_photo(320, 256).save(image)
    clip = generate(GenerationRequest(image=image, prompt="pan left", model="camera-preview", num_frames=8, seed=3))
    clip.save(tmp_path / "clip.mp4")
    metadata = tmp_path / "clip.json"
    result = cli("troubleshoot", metadata, "--symptom", "flicker")
    assert result.exit_code == 0, result.output
    assert "Next run for: flicker or jitter (seed: same)" in result.output
    assert "512p → 256p" in result.output and "--seed 3" in result.output and "--resolution 256p" in result.output
    as_json = json.loads(cli("troubleshoot", metadata, "--symptom", "subject_changed", "--json").output)
    assert as_json["proposal"]["seed"] == "new" and as_json["proposal"]["request"]["advice"]["troubleshooting"][0]["from_clip"] == "clip.json"
    wrong = cli("troubleshoot", metadata, "--symptom", "sad")
    assert wrong.exit_code == 2 and "stiff (motion too stiff or jerky)" in wrong.output
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert cli("troubleshoot", tmp_path / "bad.json", "--symptom", "flicker").exit_code == 2


def test_generate_command_quotes_what_the_shell_would_split():
    line = generate_command("my photo.png", {"prompt": "a cat's head", "steps": 60, "allow_degrade": True})
    assert line == "i2v generate 'my photo.png' 'a cat'\"'\"'s head' --steps 60 --allow-degrade"


def test_preset_fills_what_the_user_left_out_and_records_it():
    request = GenerationRequest(image=EXAMPLE, prompt="slow motion, a cat turns its head", steps=30)
    applied, lines = tier_request(request, "quality", EXAMPLE)
    assert applied.steps == 30 and applied.scheduler == "ddim" and applied.resolution == "512p"
    assert applied.num_frames == 24  # slow motion from the prompt's tags
    assert applied.advice.recommendation.preset == "quality" and "steps" not in applied.advice.recommendation.fields
    assert any(line.startswith("resolution=512p: small image") for line in lines)


def test_the_main_app_offers_assess_plan_shows_the_recommendation_and_generate_takes_a_preset(tmp_path):
    from i2v.cli import app

    runner = CliRunner()
    planned = runner.invoke(app, ["plan", str(EXAMPLE), "--json", "--vram", "24GiB"])
    assert planned.exit_code == 0, planned.output
    report = json.loads(planned.output)
    assert report["recommendation"]["preset"] == "quality" and report["recommendation"]["settings"]
    image = tmp_path / "photo.png"
    make_photo(320, 256).save(image)
    made = runner.invoke(app, ["generate", str(image), "pan left", "--model", "camera-preview", "--preset", "fast",
                               "--frames", "4", "-o", str(tmp_path / "clip.mp4")])
    assert made.exit_code == 0, made.output
    assert "preset fast: resolution=256p: small image" in made.output
    metadata = json.loads((tmp_path / "clip.json").read_text())
    assert metadata["request"]["num_frames"] == 4 and metadata["request"]["resolution"] == "256p"
    assert metadata["advice"]["recommendation_applied"] is True and "num_frames" not in metadata["advice"]["recommendation"]["fields"]
    wrong = runner.invoke(app, ["generate", str(image), "pan left", "--model", "camera-preview", "--preset", "turbo"])
    assert wrong.exit_code == 2 and "--preset must be one of fast, standard, quality" in wrong.output
    assert runner.invoke(app, ["assess", str(image), "--model", "camera-preview", "--json"]).exit_code == 0


def test_assess_takes_generates_prompt_limit_and_a_missing_text_is_a_placeholder(cli):
    from i2v.cli import FLAGS, _with_flags
    from i2v.cli_advice import PROMPT_PLACEHOLDER, generate_command

    long = cli("assess", EXAMPLE, "x" * 12_000)
    assert long.exit_code == 2 and "limit is 2000" in long.output and "run it" not in long.output
    assert len(long.output.strip().splitlines()) == 1
    bare = cli("assess", EXAMPLE)
    assert bare.exit_code == 0 and f"{EXAMPLE} {PROMPT_PLACEHOLDER} --preset" in bare.output and "…" not in bare.output
    assert generate_command("a.png", {"prompt": "p", "num_frames": 8, "steps": 30}) == "i2v generate a.png p --frames 8 --steps 30"
    assert _with_flags("num_frames: no; steps: no") == "num_frames (--frames): no; steps: no" and "num_frames" in FLAGS
