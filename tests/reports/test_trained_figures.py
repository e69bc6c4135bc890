"""Figures of a trained model (Fig. 7 ``reports.saliency``, Fig. 9 ``reports.features``, Fig. 10
``reports.kernels``): on tiny networks with random weights (ResNet-18, 4 segments, 64 px) and a synthetic
dataset generated under tmp; the command lines on a small MLflow store of such networks."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from mlflow.tracking import MlflowClient

from ean.data import generate_synthetic
from ean.data.sampling import SegmentSampler
from ean.models.kernel_weights import fusion_matrix, kernel_weights
from ean.models.soi import transformer
from ean.train.checkpoint import CHECKPOINT_FORMAT, save_checkpoint
from reports import features, kernels, saliency
from reports.clips import FrameRateSampler, validation_clip, validation_dataset
from reports.figures import features_figure, saliency_figure
from reports.trained import load_model
from study import mlflow_schema as S

SYNTHETIC = {"num_videos": 8, "num_classes": 4, "size": 72, "seed": 0, "min_frames": 16, "max_frames": 20}
TINY = {"backbone": "resnet18", "num_segments": 4, "input_size": 64, "num_classes": 4, "block": "eab"}
T, R = 4, 4  # segments, objects per frame
GROUP_SIZES = {4: [21.0, 21.0, 22.0]}  # EAB after stage 4 of a ResNet-18: C' = 256 / 4 = 64 -> 21, 21, 22


@pytest.fixture(scope="module")
def data_cfg(tmp_path_factory) -> dict:
    root = generate_synthetic(str(tmp_path_factory.mktemp("figures-synthetic") / "data"), **SYNTHETIC)
    return {
        "dataset": "synthetic",
        "root": root,
        **SYNTHETIC,
        "num_segments": T,
        "crop_size": 64,
        "resize": 72,
        "num_workers": 0,
        "decode_timeout_s": 0,
    }


def config(data_cfg: dict, **model) -> dict:
    return {"model": {**TINY, **model}, "data": data_cfg}


def tiny(data_cfg: dict, seed: int = 0, **model):
    torch.manual_seed(seed)
    return load_model(config(data_cfg, **model))


def assert_truetype_pdf(pdf) -> None:
    """The PDF embeds its fonts as TrueType (FontFile2), with no Type 3 or CFF (FontFile3) fonts."""
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert b"/FontFile2" in data
    assert b"/FontFile3" not in data and b"/Type3" not in data


def assert_figure_files(paths, stem) -> None:
    png, pdf = paths
    assert (png.name, pdf.name) == (f"{stem}.png", f"{stem}.pdf")
    assert png.stat().st_size > 10_000
    assert_truetype_pdf(pdf)


# -- the clip at twice the frame rate -------------------------------------------------------------------


def test_frame_rate_sampler_at_rate_1_is_the_test_sampler_and_at_2_half_the_stride():
    for frames in (8, 16, 17, 40, 101):
        for length in (1, 5):
            usual = SegmentSampler(8, length).test(frames)
            np.testing.assert_array_equal(FrameRateSampler(8, length, rate=1.0).test(frames), usual)
            denser = SegmentSampler(16, length).test(frames)[:, 4:12]  # the central 8 of 16 segments
            np.testing.assert_array_equal(FrameRateSampler(8, length, rate=2.0).test(frames), denser)
    with pytest.raises(ValueError, match="rate must be > 0"):
        FrameRateSampler(8, rate=0)


def test_the_2x_clip_reads_new_frames_of_the_same_video(data_cfg):
    for video in range(len(validation_dataset(data_cfg))):
        anchor, fast = validation_clip(data_cfg, video), validation_clip(data_cfg, video, rate=2.0)
        assert fast.path == anchor.path and fast.label == anchor.label
        a, f = anchor.frame_indices[:, 0], fast.frame_indices[:, 0]  # indices from the sampler
        assert len(np.unique(f)) == T and np.all(np.diff(f) > 0)  # distinct frames, not repeats
        assert f.min() >= 0 and f.max() < fast.num_frames
        assert a[0] < f[0] and f[-1] < a[-1]  # the central part of the anchor's span...
        assert np.diff(f).mean() == pytest.approx(np.diff(a).mean() / 2, abs=0.5)  # ...at half its stride
        assert not torch.equal(fast.frames, anchor.frames)
    with pytest.raises(ValueError, match="out of range"):
        validation_clip(data_cfg, 99)


# -- Fig. 7: saliency maps and attention -------------------------------------------------------------------


def test_saliency_report_draws_O_and_the_attention_of_the_tokens(data_cfg, tmp_path):
    model, clip = tiny(data_cfg), validation_clip(data_cfg, 1)
    paths, result = saliency.saliency_report(model, clip, tmp_path / "fig7", "tiny")
    assert_figure_files(paths, "fig7")
    assert result.saliency.shape == (T, R, 2, 2)  # 64 px / 32: the stage-5 grid
    np.testing.assert_allclose(result.saliency.sum(axis=(2, 3)), 1.0, rtol=1e-5)  # softmax over positions
    assert result.focus_map.shape == (T, 2, 2)
    assert result.attention.shape == (T * R, T * R) and result.head_attention.shape == (8, T * R, T * R)
    np.testing.assert_allclose(result.attention.sum(axis=1), 1.0, rtol=1e-5)
    peaks = result.saliency.reshape(T, R, -1).max(axis=2).mean(axis=0)
    assert result.focus == peaks.argmax() and result.anchor_frame == 3  # the paper's 4th frame
    np.testing.assert_allclose(result.alpha, result.attention[3 * R + result.focus])


def test_the_saliency_figure_draws_each_map_over_its_frame_and_the_attention(data_cfg):
    model, clip = tiny(data_cfg), validation_clip(data_cfg, 0)
    result = saliency.saliency_and_attention(model, clip.input())
    frames = clip.rgb_frames()
    assert frames.shape == (T, 64, 64, 3)
    fig = saliency_figure(frames, result.saliency, result.attention, result.focus, result.anchor_frame)
    grid = [ax for ax in fig.subfigs[0].axes if ax.images]  # R x T frames, row-major
    assert len(grid) == R * T
    for k in range(R):
        for j in range(T):
            image, heat = grid[k * T + j].images
            np.testing.assert_array_equal(image.get_array(), frames[j])
            np.testing.assert_allclose(heat.get_array(), result.saliency[j, k])
    matrix, bars = (ax for ax in fig.subfigs[1].axes if ax.images or ax.patches)
    np.testing.assert_allclose(matrix.images[0].get_array(), result.attention)
    heights = [p.get_height() for p in bars.patches[: T * R]]
    np.testing.assert_allclose(heights, result.alpha, rtol=1e-6)
    with pytest.raises(ValueError, match=r"attention has shape \(4, 4\), expected \(16, 16\)"):
        saliency_figure(frames, result.saliency, np.eye(4), 0, 0)


def test_recomputed_attention_weights_reproduce_the_layer_output(data_cfg, monkeypatch):
    model, clip = tiny(data_cfg), validation_clip(data_cfg, 0)
    for layer in (0, 1):
        result = saliency.saliency_and_attention(model, clip.input(), layer=layer)
        assert result.layer == layer
    with pytest.raises(ValueError, match="layer 2 out of range"):
        saliency.saliency_and_attention(model, clip.input(), layer=2)
    # an Attention that weights otherwise (here: causally masked) is caught, not drawn wrong
    causal = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
    monkeypatch.setattr(transformer, "F", types.SimpleNamespace(scaled_dot_product_attention=causal, relu=F.relu))
    with pytest.raises(RuntimeError, match="do not reproduce"):
        saliency.saliency_and_attention(model, clip.input())


@pytest.mark.parametrize(
    "regions, message",
    [("fixed", "regions FixedRegions, not the Saliency-Net"), ("none", "the model has no SOI-Tr")],
)
def test_saliency_needs_a_saliency_net(data_cfg, regions, message):
    model, clip = tiny(data_cfg, regions=regions), validation_clip(data_cfg, 0)
    with pytest.raises(ValueError, match=message):
        saliency.saliency_and_attention(model, clip.input())


# -- Fig. 9: stage-4 features and per-frame scores ------------------------------------------------------


def test_features_report_draws_both_networks_stage_4_maps_and_per_frame_scores(data_cfg, tmp_path):
    networks = {"+EAB": tiny(data_cfg), "Only SOI-Tr": tiny(data_cfg, seed=1, block="none")}
    clip = validation_clip(data_cfg, 2)
    paths, results = features.features_report(networks, clip, tmp_path / "fig9", stage=4)
    assert_figure_files(paths, "fig9")
    for label, model in networks.items():
        r = results[label]
        assert r.features.shape == (T, 256, 4, 4)  # layer3 of a ResNet-18 at 64 px: 256 x 4 x 4
        assert r.channel_mean.shape == (T, 4, 4)
        assert r.frame_logits.shape == (T, 4) and r.frame_scores(clip.label).shape == (T,)
        with torch.no_grad():  # the mean of the per-frame logits is the network's clip logit
            np.testing.assert_allclose(r.clip_logits, model(clip.input())[0].numpy(), rtol=1e-4, atol=1e-5)
        assert 0 < r.clip_score(clip.label) < 1
    # the EAN's map is the EAB's output after stage 4, the baseline's (no block) layer3's
    assert features.stage_module(networks["+EAB"], 4) is networks["+EAB"].blocks["4"]
    assert features.stage_module(networks["Only SOI-Tr"], 4) is networks["Only SOI-Tr"].backbone.layer3
    with pytest.raises(ValueError, match="stage must be 2-5"):
        features.stage_module(networks["+EAB"], 1)


def test_the_features_figure_draws_each_network_row_and_score_line(data_cfg):
    networks = {"+EAB": tiny(data_cfg), "Only SOI-Tr": tiny(data_cfg, seed=1, block="none")}
    clip = validation_clip(data_cfg, 0)
    results = {label: features.stage_features(m, clip.input()) for label, m in networks.items()}
    maps = {label: r.channel_mean for label, r in results.items()}
    scores = {label: r.frame_scores(clip.label) for label, r in results.items()}
    fig = features_figure(clip.rgb_frames(), maps, scores, {}, clip.class_name)
    rows = [ax for ax in fig.subfigs[0].axes if ax.images]
    assert len(rows) == 3 * T  # the frames, then the EAN, then the baseline
    for i, label in enumerate(maps, start=1):
        for j in range(T):
            np.testing.assert_allclose(rows[i * T + j].images[1].get_array(), maps[label][j])
    (plot,) = fig.subfigs[1].axes
    for line, label in zip(plot.lines, scores, strict=True):
        np.testing.assert_allclose(line.get_ydata(), scores[label])


# -- Fig. 10: kernel weights of M - I, and the 2x frame-rate clip -------------------------------------------


def test_kernels_report_draws_M_minus_I_when_the_fusion_adds_I(data_cfg, tmp_path):
    model = tiny(data_cfg)  # dynamic M = I + ESP-Net output (identity_init, the default)
    anchor, fast = validation_clip(data_cfg, 1), validation_clip(data_cfg, 1, rate=2.0)
    paths, result = kernels.kernels_report(model, anchor, fast, tmp_path / "fig10")
    assert_figure_files(paths, "fig10")
    assert result.minus_identity
    for variant in ("anchor", "zoom_1.6x", "fps_2x"):
        for axis in ("spatial", "temporal"):  # the identity gave each kernel its group size; nothing else moved
            drawn, raw = result.weights[variant][axis], result.raw[variant][axis]
            np.testing.assert_allclose(raw - drawn, GROUP_SIZES[4], rtol=1e-6)
            assert np.abs(drawn).max() < 1.0  # a new ESP-Net is near zero: M - I is small, M is not
    raw_m, learned_m = fusion_matrix(model, anchor.input(), 4), fusion_matrix(model, anchor.input(), 4, True)
    shift = np.diag((raw_m - learned_m)[0].numpy())
    np.testing.assert_allclose(shift, 1.0, rtol=1e-6)  # M - I: the diagonal less exactly one
    fps = kernel_weights(model, fast.input(), 4, minus_identity=True)  # the fps_2x bars are the re-read clip's
    np.testing.assert_allclose(result.weights["fps_2x"]["temporal"], fps["temporal"][0].numpy(), rtol=1e-6)


def test_kernels_report_draws_M_itself_without_the_identity(data_cfg, tmp_path):
    model = tiny(data_cfg, fusion_options={"identity_init": False})
    anchor, fast = validation_clip(data_cfg, 0), validation_clip(data_cfg, 0, rate=2.0)
    _, result = kernels.kernels_report(model, anchor, fast, tmp_path / "fig10")
    assert not result.minus_identity
    for variant, axes in result.weights.items():
        for axis, drawn in axes.items():
            np.testing.assert_array_equal(drawn, result.raw[variant][axis])
    with pytest.raises(ValueError, match="2x frame-rate clip is of"):
        kernels.kernels_report(model, anchor, validation_clip(data_cfg, 1, rate=2.0), tmp_path / "x")


# -- the command lines, on an MLflow store of tiny trained (random) networks --------------------------------

SPEC = {
    "name": "trained_figures",
    "title": "Figures of trained models (test fixture)",
    "overrides": ["model=ean8f_rgb"],
    "seeds": [0],
    "protocol": {"clips": 1, "crops": 1},
    "columns": ["top1"],
    "baseline": "base",
    "rows": [
        {"id": "base", "label": "Only SOI-Tr", "overrides": ["block=none"]},
        {"id": "eab", "label": "+EAB", "overrides": ["block=eab"]},
        {"id": "fixed", "label": "+EAB, fixed regions", "overrides": ["regions=fixed"]},
        {"id": "untrained", "label": "not run", "overrides": ["block=s_block"]},
    ],
}
ROW_MODELS = {"base": {"block": "none"}, "eab": {}, "fixed": {"regions": "fixed"}}


@pytest.fixture(scope="module")
def store(data_cfg, tmp_path_factory):
    """(spec path, tracking URI) of a store with one FINISHED run per row but ``untrained``, each with its
    config artifact and a checkpoint of a tiny network with random weights."""
    root = tmp_path_factory.mktemp("figures-store")
    spec_path = root / "trained_figures.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment(SPEC["name"], artifact_location=(root / "artifacts").as_uri())
    for i, (row, model_cfg) in enumerate(ROW_MODELS.items()):
        cfg = config(data_cfg, **model_cfg)
        checkpoint = save_checkpoint(
            root / row / "checkpoints" / "last.pt",
            {"format": CHECKPOINT_FORMAT, "model": tiny(data_cfg, seed=i, **model_cfg).state_dict()},
        )
        tags = {
            S.TAG_KIND: S.KIND_TRIAL,
            S.TAG_STUDY: SPEC["name"],
            S.TAG_ROW: row,
            S.TAG_SEED: "0",
            S.TAG_CHECKPOINT: str(checkpoint),
        }
        run_id = client.create_run(exp, tags=tags, run_name=S.run_name(SPEC["name"], row, 0)).info.run_id
        for key in ("block", "fusion", "regions"):
            client.log_param(run_id, f"model.{key}", {"fusion": "dynamic", "regions": "saliency", **cfg["model"]}[key])
        (root / row / S.ARTIFACT_CONFIG).write_text(yaml.safe_dump(cfg))
        client.log_artifact(run_id, str(root / row / S.ARTIFACT_CONFIG))
        client.set_terminated(run_id, S.STATUS_FINISHED)
    return spec_path, uri


def run_main(module, store, tmp_path, *args):
    spec_path, uri = store
    return module.main([str(spec_path), *args, "--mlflow-uri", uri, "--out", str(tmp_path)])


def test_commands_write_their_figures_where_reports_make_puts_figures(store, tmp_path, capsys):
    assert run_main(saliency, store, tmp_path, "eab", "--video", "1") == 0
    assert run_main(features, store, tmp_path, "eab", "base") == 0
    assert run_main(kernels, store, tmp_path, "eab", "--seed", "0") == 0
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    stems = ["features_eab_vs_base_seed0_video0", "kernels_eab_seed0_video0", "saliency_eab_seed0_video1"]
    assert names == sorted(f"trained_figures_{s}.{e}" for s in stems for e in ("pdf", "png"))
    for pdf in (tmp_path / "figures").glob("*.pdf"):
        assert_truetype_pdf(pdf)
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(tmp_path / "figures" / n) for n in names)


def test_a_wrong_row_gets_a_clear_error(store, tmp_path, capsys):
    assert run_main(saliency, store, tmp_path, "fixed") == 2
    err = capsys.readouterr().err
    assert "row 'fixed' of trained_figures has regions=fixed" in err
    assert "needs regions=saliency" in err and "finished regions=saliency run: base, eab" in err
    assert run_main(kernels, store, tmp_path, "base") == 2
    err = capsys.readouterr().err
    assert "row 'base' of trained_figures has block=none" in err and "such a block: eab, fixed" in err
    assert run_main(saliency, store, tmp_path, "untrained") == 2
    assert "no FINISHED run with a checkpoint on this machine for trained_figures/untrained/seed0" in (
        capsys.readouterr().err
    )
    assert run_main(features, store, tmp_path, "eab", "nope") == 2
    assert "no row 'nope' in study 'trained_figures'; rows: base, eab, fixed, untrained" in capsys.readouterr().err
    assert run_main(features, store, tmp_path, "eab", "eab") == 2
    assert "ROW and BASELINE are both 'eab'" in capsys.readouterr().err
    assert not (tmp_path / "figures").exists()


def test_kernels_at_a_stage_without_the_eab_names_the_eab_stages(store, tmp_path, capsys):
    assert run_main(kernels, store, tmp_path, "eab", "--stage", "5") == 2
    err = capsys.readouterr().err
    assert "row 'eab' of trained_figures has no EAB after stage 5; its EABs follow stages 1, 2, 3, 4" in err
    assert "give --stage one of them" in err and "such a block: eab" not in err  # not the row it refuses
    assert not (tmp_path / "figures").exists()


def test_in_a_study_of_two_datasets_a_figure_uses_the_trial_of_the_dataset_asked_for(data_cfg, tmp_path, capsys):
    """Table 1 trains each row once per dataset: --dataset chooses the trial (default: the first dataset's), and the
    figure's file names say which."""
    from reports.trained import trained
    from study.spec import parse_spec

    spec_data = {
        **{k: v for k, v in SPEC.items() if k != "overrides"},
        "name": "two_sets",
        "datasets": {"something_v1": {}, "something_v2": {}},
        "rows": SPEC["rows"][:2],
    }
    spec = parse_spec(spec_data)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("two_sets", artifact_location=(tmp_path / "artifacts").as_uri())
    run_ids = {}
    for column in ("something_v2", "something_v1"):  # V1's run is the newer one
        checkpoint = save_checkpoint(
            tmp_path / column / "checkpoints" / "last.pt",
            {"format": CHECKPOINT_FORMAT, "model": tiny(data_cfg).state_dict()},
        )
        tags = {S.TAG_KIND: S.KIND_TRIAL, S.TAG_STUDY: "two_sets", S.TAG_ROW: "eab", S.TAG_SEED: "0"}
        tags.update({S.TAG_COLUMN: column, S.TAG_CHECKPOINT: str(checkpoint)})
        run_id = client.create_run(exp, tags=tags).info.run_id
        (tmp_path / column / S.ARTIFACT_CONFIG).write_text(yaml.safe_dump(config(data_cfg)))
        client.log_artifact(run_id, str(tmp_path / column / S.ARTIFACT_CONFIG))
        client.set_terminated(run_id, S.STATUS_FINISHED)
        run_ids[column] = run_id
    assert trained(client, spec, "eab", 0, "something_v2").run.info.run_id == run_ids["something_v2"]
    assert trained(client, spec, "eab", 0).run.info.run_id == run_ids["something_v1"]

    spec_path = tmp_path / "two_sets.yaml"
    spec_path.write_text(yaml.safe_dump(spec_data, sort_keys=False))
    args = [str(spec_path), "eab", "--mlflow-uri", uri, "--out", str(tmp_path / "out")]
    assert kernels.main([*args, "--dataset", "something_v2"]) == 0
    assert (tmp_path / "out" / "figures" / "two_sets_kernels_eab_something_v2_seed0_video0.pdf").is_file()
    assert kernels.main([*args, "--dataset", "kinetics400"]) == 2
    assert "no dataset column 'kinetics400'; --dataset: something_v1, something_v2" in capsys.readouterr().err


def test_a_figure_is_of_the_run_the_table_in_its_folder_shows(data_cfg, tmp_path, capsys, monkeypatch):
    """Two FINISHED runs of +EAB seed 0 of two configurations (trial keys), the newer of the other one: with the
    table of the first in the report folder (in any format), the figure is of the run the table shows, not of the
    newest. The newest, saying why: a folder without a table, a cell the table does not have (seed 1), a table of
    another store's runs. A cell the table shows failed is refused by name."""
    from reports.make import make_report
    from reports.trained import trained
    from study.spec import SpecError, parse_spec

    spec_data = {**{k: v for k, v in SPEC.items() if k != "overrides"}, "name": "two_keys", "rows": SPEC["rows"][:2]}
    spec = parse_spec(spec_data)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("two_keys", artifact_location=(tmp_path / "artifacts").as_uri())
    run_ids = {}
    runs = [("eab", 0, "spec_key", "FINISHED"), ("eab", 0, "other_key", "FINISHED")]  # other_key: the newer
    for row, seed, key, status in [*runs, ("eab", 1, "spec_key1", "FINISHED"), ("base", 0, "base_key", "FAILED")]:
        checkpoint = save_checkpoint(
            tmp_path / key / "checkpoints" / "last.pt",
            {"format": CHECKPOINT_FORMAT, "model": tiny(data_cfg).state_dict()},
        )
        tags = {S.TAG_KIND: S.KIND_TRIAL, S.TAG_STUDY: "two_keys", S.TAG_ROW: row, S.TAG_SEED: str(seed)}
        tags.update({S.TAG_TRIAL_KEY: key, S.TAG_CHECKPOINT: str(checkpoint), S.TAG_DATASET: "something_v1"})
        tags[S.TAG_PROTOCOL] = "1x1"
        run_id = client.create_run(exp, tags=tags).info.run_id
        client.log_metric(run_id, "top1", 50.0)
        (tmp_path / key / S.ARTIFACT_CONFIG).write_text(yaml.safe_dump(config(data_cfg)))
        client.log_artifact(run_id, str(tmp_path / key / S.ARTIFACT_CONFIG))
        client.set_terminated(run_id, status)
        run_ids[key] = run_id
    folder = tmp_path / "report"
    keys = {("eab", "", 0): "spec_key", ("base", "", 0): "base_key"}
    make_report(spec, folder, uri, formats=("md",), draw_figures=False, keys=keys)  # any format: the folder's record
    capsys.readouterr()
    assert trained(client, spec, "eab", 0, out=folder).run.info.run_id == run_ids["spec_key"]
    said = capsys.readouterr().err
    assert f"eab seed 0: run {run_ids['spec_key']} (trial key spec_key), the one the table in {folder}" in said
    assert trained(client, spec, "eab", 0, out=tmp_path / "no-table").run.info.run_id == run_ids["other_key"]
    said = capsys.readouterr().err
    assert f"run {run_ids['other_key']} (trial key other_key), the newest FINISHED one: " in said
    assert "no-table has no table of two_keys" in said
    parent = client.create_run(exp, tags={S.TAG_PROFILE: "smoke"}).info.run_id  # the invocation that made it
    client.set_tag(run_ids["other_key"], S.TAG_PARENT_RUN_ID, parent)
    monkeypatch.chdir(tmp_path)  # no table in outputs/reports/two_keys: the newest, a smoke run's, beside it
    assert trained(client, spec, "eab", 0).folder == Path("outputs") / "reports" / "two_keys-smoke"  # an older run
    assert "another invocation than the spec's own: its figures go to outputs/reports/two_keys-smoke" in (
        capsys.readouterr().err
    )
    client.set_tag(parent, S.TAG_REPORT_FOLDER, "outputs/reports/two_keys-seeds-0-overrides-c988dfe7")
    assert trained(client, spec, "eab", 0).folder == Path("outputs/reports/two_keys-seeds-0-overrides-c988dfe7")
    assert trained(client, spec, "eab", 0, out=tmp_path / "no-table").folder == tmp_path / "no-table"  # as asked
    assert trained(client, spec, "eab", 1, out=folder).run.info.run_id == run_ids["spec_key1"]
    assert f"the table in {folder} has no cell of eab seed 1" in capsys.readouterr().err
    with pytest.raises(SpecError, match=r"the table in .*report shows no FINISHED run of base seed 0 \(its run: FAIL"):
        trained(client, spec, "base", 0, out=folder)
    elsewhere = MlflowClient(f"sqlite:///{tmp_path / 'other.db'}")  # not the store the table was made from
    with pytest.raises(SpecError, match=r"no MLflow experiment 'two_keys' at .*other.db"):  # its newest: none
        trained(elsewhere, spec, "eab", 0, out=folder)
