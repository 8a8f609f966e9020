"""The dataset options through ``snhoo-dask serve``'s JSON API: refused with the field, or run."""

from __future__ import annotations

import json
import os
import tarfile

import pytest
from dataset_videos import SHOT_STARTS, three_shots
from helpers import start_dask, start_serve

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("dataset-web"))
    base, out_base = os.path.join(tmp, "lab"), os.path.join(tmp, "frames")
    three_shots(os.path.join(base, "shots", "a.mp4"))
    os.makedirs(out_base)
    dask = start_dask(tmp)
    svc = start_serve(tmp, dask.address, [base], [out_base], os.path.join(tmp, "state"))
    try:
        yield svc, out_base
    finally:
        svc.stop()
        dask.stop()


BAD = [
    # (extra body fields, field, words in the message)
    (
        {"mode": "frames", "value": "1,2", "dedup": True},
        "dedup",
        "dedup works with all frames, every, fps or scenes",
    ),
    ({"max_side": 512, "square": 256}, "square", "choose max side or square, not both"),
    ({"max_side": 0}, "max_side", "max side must be from 4"),
    ({"max_side": "big"}, "max_side", "max_side must be from 4 to 16384 pixels"),
    ({"pack": "zip"}, "pack", "pack must be one of folder, tar"),
    ({"pack": "shards", "shard_size": "lots"}, "shard_size", "shard size must be a size such as 500MB"),
    ({"dedup": "yes"}, "dedup", "true or false"),
    ({"dedup_lo": 10}, "dedup", "dedup lo only applies with dedup"),
    ({"mode": "scenes", "value": "high"}, "value", "scene threshold like 0.3"),
    ({"mode": "scenes", "value": "2"}, "value", "between 0 and 1"),
]


@pytest.mark.parametrize(
    "extra, field, words", BAD, ids=[b[1] + "-" + b[2][:20].replace(" ", "_") for b in BAD]
)
def test_api_refuses_bad_dataset_options_naming_the_field(service, extra, field, words):
    svc, out_base = service
    code, reply = svc.call("/api/jobs", "POST", {"roots": ["shots"], "out": "bad", **extra})
    assert (code, reply.get("field")) == (400, field), reply
    assert words in reply["error"], reply
    assert not os.path.exists(os.path.join(out_base, "bad"))


def test_api_runs_scenes_resized_into_a_tar(service):
    svc, out_base = service
    body = {"roots": ["shots"], "out": "set", "mode": "scenes", "value": "", "square": 64, "pack": "tar"}
    code, reply = svc.call("/api/jobs", "POST", body)
    assert code == 201, reply
    job = svc.wait_job(reply["id"], timeout=240)
    assert job["state"] == "done", job
    with tarfile.open(os.path.join(out_base, "set", "shots", "a.mp4.tar")) as t:
        metas = [json.load(t.extractfile(m)) for m in t if m.name.endswith(".json")]
    assert [m["index"] for m in metas] == SHOT_STARTS
    assert {(m["width"], m["height"]) for m in metas} == {(64, 64)}
    # Resume from the web keeps the options: the rerun finds the tar complete.
    code, again = svc.call(f"/api/jobs/{reply['id']}/resume", "POST", {})
    assert code == 202, again
    job = svc.wait_job(reply["id"], timeout=240)
    assert (job["state"], job["ok"], job["skipped"], job["runs"]) == ("done", 0, 1, 2), job


def test_api_runs_scenes_into_shards_with_their_scene_list(service):
    wds = pytest.importorskip("webdataset")
    svc, out_base = service
    body = {"roots": ["shots"], "out": "sharded", "mode": "scenes", "value": "", "pack": "shards"}
    code, reply = svc.call("/api/jobs", "POST", {**body, "shard_size": "20KB"})
    assert code == 201, reply
    job = svc.wait_job(reply["id"], timeout=240)
    assert (job["state"], job["ok"]) == ("done", 1), job
    tars = sorted(
        os.path.join(out_base, "sharded", "shards", n)
        for n in os.listdir(os.path.join(out_base, "sharded", "shards"))
        if n.endswith(".tar")
    )
    metas = [json.loads(s["json"]) for s in wds.WebDataset(tars, shardshuffle=False, empty_check=False)]
    assert [m["frame"] for m in metas] == SHOT_STARTS
    assert all(isinstance(m["scene_score"], float) for m in metas[1:])
    with tarfile.open(tars[-1]) as t:  # the scene list rides in the shard, where loaders skip it
        (scenes,) = [m for m in t if m.name.startswith("__scenes__/")]
        assert t.extractfile(scenes).read().splitlines()[0].startswith(b"Scene Number,")
