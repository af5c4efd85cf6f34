from mlflow import MlflowClient

from framework.tracking import Tracker


def test_many_params_and_odd_names_are_logged_in_batches(locations) -> None:
    locations.prepare()
    tracker = Tracker(locations)
    experiment = tracker.experiment_id("batching")
    assert tracker.experiment_id("batching") == experiment  # reused, not duplicated
    run = tracker.start_run(experiment, "r", {"k": "v"})
    tracker.log_params(run, {f"p{i}": i for i in range(250)} | {"bad[key]": "x" * 9000})
    tracker.log_metrics(run, {"val_loss": 1.5, "rate/attention": 0.1}, step=3)
    tracker.end_run(run, "FINISHED")
    data = MlflowClient(locations.tracking_uri).get_run(run).data
    assert len(data.params) == 251
    assert len(data.params["bad_key_"]) == 6000
    assert data.metrics == {"val_loss": 1.5, "rate/attention": 0.1}
    assert data.tags["dropout_lab.version"]
