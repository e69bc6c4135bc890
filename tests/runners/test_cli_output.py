"""What the runner prints for people: where to browse the study's runs."""

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
