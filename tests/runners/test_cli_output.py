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
