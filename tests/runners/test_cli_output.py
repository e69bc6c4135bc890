"""What the runner prints for people: where to browse the study's runs."""

from pathlib import Path

from runners.session import browse_hint


def test_browse_hint_opens_the_model_training_view_of_the_experiment():
    local = browse_hint("sqlite:///mlflow.db", "3")
    assert local == (
        "runs: mlflow ui --backend-store-uri sqlite:///mlflow.db, "
        "then http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning"
    )
    served = browse_hint("http://head:5000/", "7")
    assert served == "runs: http://head:5000/#/experiments/7?workflowType=machine_learning"


def test_the_recipe_line_names_lr_steps_only_under_the_step_schedule():
    from runners.run import recipe_line

    recipe = {
        "global_batch": 64, "devices": 1, "per_device_batch": 8, "accumulation": 8, "lr": 0.01, "schedule": "step",
        "lr_steps": [30, 40], "epochs": 50, "momentum": 0.9, "weight_decay": 5e-4, "param_groups": 2,
        "clip_grad": 20, "dropout": 0.5, "pretrained": "imagenet1k_v1", "protocol": "1x1", "precision": "fp32",
    }  # fmt: skip
    assert "lr 0.01 (step, steps [30, 40]), 50 epochs" in recipe_line(recipe)
    assert "lr 0.01 (cosine), 50 epochs" in recipe_line({**recipe, "schedule": "cosine"})


def test_the_report_folder_names_what_the_invocation_changed_from_the_spec():
    """The spec as written reports to ``outputs/reports/<study>``; a profile, other seeds or command-line overrides
    report beside it, in a folder named for them, so that they never replace the spec's own table."""
    from runners.run import report_folder

    reports = Path("outputs") / "reports"
    assert report_folder("table8", None, [0, 1, 2], (0, 1, 2), []) == reports / "table8"
    assert report_folder("table8", None, [2, 0, 1], (0, 1, 2), []) == reports / "table8"  # the same seeds
    assert report_folder("table8", "smoke", [0, 1, 2], (0, 1, 2), []) == reports / "table8-smoke"
    assert report_folder("demo", None, [3, 4, 5], (0, 1, 2), []) == reports / "demo-seeds-3-4-5"
    assert report_folder("demo", None, [5, 3, 4], (0, 1, 2), []) == reports / "demo-seeds-3-4-5"
    assert report_folder("demo", None, [0], (0, 1, 2), []) == reports / "demo-seeds-0"
    one = report_folder("table8", None, [0, 1, 2], (0, 1, 2), ["trainer.epochs=5"])
    other = report_folder("table8", None, [0, 1, 2], (0, 1, 2), ["trainer.epochs=6"])
    assert one.name.startswith("table8-overrides-") and len(one.name) == len("table8-overrides-") + 8
    assert one != other
    both = report_folder("table8", "smoke", [0], (0, 1, 2), ["trainer.epochs=5"])
    assert both.name == f"table8-smoke-seeds-0-{one.name.removeprefix('table8-')}"


def test_the_invocation_text_names_what_the_command_changed_from_the_spec():
    """The table's provenance says what the runs' command changed: nothing for the spec as written."""
    from runners.run import invocation_text

    assert invocation_text(None, [2, 0, 1], (0, 1, 2), []) == ""
    assert invocation_text("smoke", [0], (0, 1, 2), ["trainer.epochs=5", "data.root=my data"]) == (
        "--profile smoke --seeds 0 trainer.epochs=5 'data.root=my data'"
    )
