"""Each setting of a run is decided once: a model's rules are applied in `ModelSpec.resolve` alone, and every
backend takes the RunPlan it makes (read with `ast`, so a new call site or a new backend is checked too)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from i2v.models.plan import RunPlan
from i2v.models.registry import plugins
from i2v.request import GenerationRequest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "i2v"
#: What applying a model's rules to a request means: its defaults, the size from a preset at the image's aspect
#: ratio, the motion conditioning from fps, the default step cache, a drawn seed.
RULES = {"defaults", "motion_fps_for", "default_cache", "default_scheduler", "with_seed", "target"}


def calls_by_function() -> dict[str, set[str]]:
    """For each function in i2v ("module:qualified name"), the names of the methods it calls."""
    found: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        module = ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))

        def visit(node: ast.AST, scope: list[str]) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    visit(child, [*scope, child.name])
                    continue
                if isinstance(child, ast.Attribute) and scope:
                    found.setdefault(f"{module}:{'.'.join(scope)}", set()).add(child.attr)
                visit(child, scope)

        visit(tree, [])
    return found


def shows(function: str) -> bool:
    """The web UI fills its form with a model's defaults: it shows them, it never runs with them."""
    return function.startswith("i2v.web.")


def test_a_models_rules_are_applied_in_spec_resolve_alone():
    """No function but `ModelSpec.resolve` reads a spec's motion rule or default cache to fill a request in, or
    draws a seed (but the job service, for a model it cannot resolve); the others that read a spec's defaults or
    presets are named below, with why."""
    users = {
        rule: sorted(function for function, names in calls_by_function().items() if rule in names and not shows(function))
        for rule in RULES
    }
    resolve = "i2v.models.spec:ModelSpec.resolve"
    for rule in ("motion_fps_for", "default_cache"):
        assert users[rule] == [resolve], (rule, users[rule])
    # A job for a model only a remote worker has is resolved there, but its seed is drawn at submission too.
    assert users["with_seed"] == ["i2v.jobs.service:JobService.submit", resolve], users["with_seed"]
    # defaults() is the spec's table of defaults: resolve applies it, the advisor's recommendation lists it.
    assert [user for user in users["defaults"] if not user.startswith("i2v.advisor.recommend:")] == [resolve]
    # The size presets are read by resolve for a run; by the ladder's "lower resolution" rung and the shipped-trace
    # builder, which step down from a resolved size; and by the advisor, which says what size a tier would give.
    assert set(users["target"]) <= {
        resolve, "i2v.models.spec:SizeRule.smaller", "i2v.models.shipped:sizes", "i2v.advisor.assess:measure",
        "i2v.advisor.recommend:_tier_settings", "i2v.advisor.recommend:advise",
    }, users["target"]
    assert not hasattr(GenerationRequest, "target_size")


def test_no_request_is_filled_in_outside_resolve():
    """`spec.apply` (which validated and filled defaults into a request) is gone: the edge checks with
    `spec.check`, and everything else works from the RunPlan `spec.resolve` made."""
    for names in calls_by_function().values():
        assert "apply" not in names or "recommendation" in names or "projection" in names or "rung" in names


def test_submit_stores_the_resolved_plan_and_the_worker_runs_it(tmp_path, monkeypatch):
    """The job service resolves once, at submission (the size from the uploaded image's aspect ratio, the
    model's defaults, the seed), the job row keeps that plan, and the worker runs exactly it."""
    from fastapi.testclient import TestClient
    from helpers import png_bytes, submit_accepted, wait_for_job

    import i2v.generation
    from i2v.jobs.config import ServiceSettings
    from i2v.web.app import create_app

    given: list[RunPlan | None] = []
    real = i2v.generation.generate

    def spy(request, hooks=None, *, plan=None, **kwargs):
        given.append(plan)
        return real(request, hooks, plan=plan, **kwargs)

    app = create_app(ServiceSettings(home=tmp_path / "home", models="camera-preview"), ui=False)
    with TestClient(app) as client:
        monkeypatch.setattr(app.state.service.queue.runner, "generate", spy)
        job_id = submit_accepted(client, {"prompt": "pan left", "model": "camera-preview", "num_frames": 4}, png_bytes(128, 64))
        stored = RunPlan.model_validate(app.state.service.get(job_id).run_plan)
        job = wait_for_job(client, job_id, lambda job: job["state"] not in ("queued", "running"))
    assert job["state"] == "succeeded", job
    assert (stored.backend, stored.num_frames, stored.resolution) == ("camera-preview", 4, "512p")
    assert stored.width > stored.height and stored.seed == job["request"]["seed"] and stored.user_set == {"num_frames"}
    assert given == [stored]


def test_every_backend_takes_a_run_plan_and_no_request():
    for plugin in plugins().values():
        backend = plugin.backend_class()
        parameters = inspect.signature(backend.generate).parameters
        assert list(parameters)[1:4] == ["plan", "image", "hooks"], (plugin.name, list(parameters))
        hints = inspect.get_annotations(backend.generate)
        assert hints["plan"] in (RunPlan, "RunPlan"), plugin.name
        source = inspect.getsource(inspect.getmodule(backend))
        assert "GenerationRequest" not in source and "request." not in source, plugin.name


def test_cost_models_take_a_run_plan_and_models_import_nothing_from_the_advisor():
    for path in (SOURCE / "models").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
        imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        assert not [name for name in imported if name.startswith("i2v.advisor")], path
    for plugin in plugins().values():
        cost = plugin.cost_model()
        assert inspect.get_annotations(type(cost).predict_peak)["plan"] in (RunPlan, "RunPlan"), plugin.name


def test_the_plan_has_room_for_what_comes_next():
    """LoRAs with strengths, the window of a long video, the expert that runs: declared, empty by default."""
    plan = RunPlan(backend="i2vgenxl", width=64, height=64, num_frames=8)
    assert (plan.loras, plan.window, plan.expert) == ((), 0, None)


def test_generate_with_a_preset_decodes_the_image_and_refines_the_prompt_once(tmp_path, monkeypatch):
    """`generate --preset` reads the image and the prompt's tags for the advice; the run takes both from there."""
    import json

    from helpers import make_photo
    from typer.testing import CliRunner

    import i2v.generation
    from i2v.cli import app
    from i2v.media import images
    from i2v.refine.rules import RuleRefiner

    decoded, refined = [], []
    real_load, real_refine = images.load_image, RuleRefiner.refine
    monkeypatch.setattr(images, "load_image", lambda *args, **kwargs: decoded.append(args) or real_load(*args, **kwargs))
    monkeypatch.setattr(i2v.generation, "load_image", images.load_image)
    monkeypatch.setattr(RuleRefiner, "refine", lambda self, *args: refined.append(args) or real_refine(self, *args))
    image = tmp_path / "photo.png"
    make_photo(320, 256).save(image)
    made = CliRunner().invoke(app, ["generate", str(image), "pan left", "--model", "camera-preview", "--preset", "fast",
                                    "--frames", "4", "-o", str(tmp_path / "clip.mp4")])
    assert made.exit_code == 0, made.output
    assert len(decoded) == 1 and len(refined) == 1, (decoded, refined)
    metadata = json.loads((tmp_path / "clip.json").read_text())
    assert metadata["refined_prompt"]["tags"] and metadata["request"]["resolution"] == "256p"


def test_i2v_plan_resolves_and_plans_once(monkeypatch):
    """The report's plan is its unconstrained plan narrowed: one resolve, one unconstrained plan."""
    from i2v.advisor import plan as planning
    from i2v.advisor import report
    from i2v.models.spec import ModelSpec

    resolved, started = [], []
    real_resolve, real_start = ModelSpec.resolve, planning.unconstrained_plan
    monkeypatch.setattr(ModelSpec, "resolve", lambda self, *args, **kwargs: resolved.append(1) or real_resolve(self, *args, **kwargs))
    monkeypatch.setattr(report, "unconstrained_plan", lambda *args, **kwargs: started.append(1) or real_start(*args, **kwargs))
    request = GenerationRequest(image="photo.png", prompt="plan", model="camera-preview", num_frames=16)
    result = report.plan_report(request, (1280, 704), vram="24GiB")
    assert result["fits"] and result["plan"]["frames"] == 16
    assert (len(resolved), len(started)) == (1, 1)
