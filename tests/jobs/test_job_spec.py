"""One job spec (jobs/spec.py): the command line and the web build the same job from the same
options, the web takes every option the command line has but scratch, and each side words
the shared refusals with its own names for the options."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from click.testing import CliRunner

from snhoo_dask.cli import commands
from snhoo_dask.jobs.spec import JobSpec, build_job
from snhoo_dask.options import OptionError, check
from snhoo_dask.settings import Settings
from snhoo_dask.web.validate import PathPolicy, RequestError, Submission
from snhoo_dask.web.validate import build_job as web_build_job

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def lab(tmp_path):
    """An allowed folder with a root of three files (discovery reads no video), and an
    output base."""
    day = tmp_path / "lab" / "day"
    day.mkdir(parents=True)
    for name in ("a.mp4", "b.mkv", "c.avi"):
        (day / name).write_bytes(b"x" * 100)
    (tmp_path / "frames").mkdir()
    return tmp_path


# Every option away from its default, as the command line and as the JSON API say it.
CLI_ARGS = [
    "--every", "5",
    "--format", "png",
    "--quality", "70",
    "--ext", "mp4,mkv",
    "--stage",
    "--timeout", "5",
    "--decode-all",
    "--split-seconds", "0",
    "--hwaccel", "none",
    "--max-pixels", "1000000",
    "--max-side", "64",
    "--dedup", "--dedup-hi", "500", "--dedup-lo", "100", "--dedup-frac", "0.5",
    "--pack", "tar",
    "--overwrite",
]  # fmt: skip
WEB_BODY = {
    "mode": "every",
    "value": "5",
    "format": "png",
    "quality": 70,
    "ext": "mp4,mkv",
    "stage": "always",
    "timeout": 5,
    "decode_all": True,
    "split_seconds": 0,
    "hwaccel": "none",
    "max_pixels": 1000000,
    "max_side": 64,
    "dedup": True,
    "dedup_hi": 500,
    "dedup_lo": 100,
    "dedup_frac": 0.5,
    "pack": "tar",
    "overwrite": True,
}


def cli_job(monkeypatch, *args: str):
    """The Job ``snhoo-dask run ... --dry-run`` builds, caught where the dry run lists it."""
    jobs = []
    monkeypatch.setattr(commands, "dry_run_command", lambda job, list_all=False: jobs.append(job) or 0)
    result = CliRunner().invoke(commands.main, ["run", *args, "--dry-run"])
    assert result.exit_code == 0, result.output
    (job,) = jobs
    return job


def web_job(lab, body: dict, claimed: list | None = None):
    policy = PathPolicy.make([str(lab / "lab")], [str(lab / "frames")])
    claimed = [] if claimed is None else claimed
    return web_build_job(Submission.from_json({"roots": ["day"], **body}), policy, claimed.append)


def comparable(settings: Settings) -> Settings:
    return replace(settings, run_id="", out="")


def test_the_command_line_and_the_web_build_the_same_job_from_the_same_options(lab, monkeypatch):
    cli = cli_job(monkeypatch, str(lab / "lab" / "day"), "--out", str(lab / "frames" / "cli"), *CLI_ARGS)
    web = web_job(lab, {"out": "web", **WEB_BODY})
    assert comparable(web.settings) == comparable(cli.settings)
    assert web.overwrite is cli.overwrite is True
    assert [v.rel for v in web.videos] == [v.rel for v in cli.videos] == ["a.mp4", "b.mkv"]  # --ext
    s = web.settings
    assert (s.stage, s.timeout, s.decode_all, s.split_seconds, s.hwaccel) == (
        "always",
        5.0,
        True,
        0.0,
        "none",
    )
    assert (s.fmt, s.quality, s.pack, s.max_pixels) == ("png", 70, "tar", 1000000)
    assert (s.selection.mode, s.selection.every, s.resize.size, s.dedup.frac) == ("every", 5, 64, 0.5)
    # The defaults are the same too.
    cli = cli_job(monkeypatch, str(lab / "lab" / "day"), "--out", str(lab / "frames" / "cli2"))
    web = web_job(lab, {"out": "web2"})
    assert comparable(web.settings) == comparable(cli.settings)
    assert not os.path.exists(lab / "frames" / "cli2")  # a dry run creates no output folder
    assert os.path.isdir(lab / "frames" / "web2")


def test_the_web_form_takes_the_run_options_too(lab):
    form = {"roots": "day", "out": "form", "stage": "never", "hwaccel": "cuda", "timeout": "7.5"}
    form |= {"split_seconds": "30", "decode_all": "on"}
    policy = PathPolicy.make([str(lab / "lab")], [str(lab / "frames")])
    sub = Submission.from_form(lambda name, default: form.get(name, default))
    s = web_build_job(sub, policy, lambda out: None).settings
    assert (s.stage, s.hwaccel, s.timeout, s.split_seconds, s.decode_all) == (
        "never",
        "cuda",
        7.5,
        30.0,
        True,
    )
    with pytest.raises(RequestError, match="timeout must be a number of seconds") as e:
        Submission.from_form(lambda name, default: {"roots": "day", "timeout": "soon"}.get(name, default))
    assert (e.value.status, e.value.field) == (400, "timeout")


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"stage": "sometimes"}, "stage", "stage must be one of auto, always, never, not 'sometimes'"),
        ({"stage": ["always"]}, "stage", "stage must be a string"),
        ({"hwaccel": "gpu"}, "hwaccel", "hwaccel must be one of auto, cuda, none"),
        ({"timeout": 0.5}, "timeout", "timeout must be a number of seconds from 1 to 86400, not 0.5"),
        ({"timeout": -1}, "timeout", "not -1"),
        ({"timeout": float("nan")}, "timeout", "not nan"),
        ({"timeout": float("inf")}, "timeout", "not inf"),
        ({"timeout": 10**4000}, "timeout", "not a number too large"),
        ({"timeout": 1e12}, "timeout", "from 1 to 86400"),
        ({"timeout": True}, "timeout", "a number of seconds"),
        ({"timeout": "5"}, "timeout", "a number of seconds"),
        ({"split_seconds": -0.5}, "split_seconds", "split seconds must be a number of seconds from 0"),
        ({"split_seconds": float("inf")}, "split_seconds", "not inf"),
        ({"split_seconds": None}, "split_seconds", "a number of seconds"),
        ({"decode_all": "yes"}, "decode_all", "decode_all must be true or false"),
        ({"scratch": "/tmp/anywhere"}, "scratch", "not taken from the web"),
        ({"scratch": None}, "scratch", "not taken from the web"),  # refused, not ignored
    ],
)
def test_bad_run_options_are_a_400_naming_the_field_and_nothing_is_made(lab, body, field, words):
    claimed = []
    with pytest.raises(RequestError) as e:
        web_job(lab, {"out": "bad", **body}, claimed)
    assert (e.value.status, e.value.field) == (400, field), e.value.message
    assert words in e.value.message
    assert claimed == [] and not os.path.exists(lab / "frames" / "bad")


def test_claim_comes_after_every_option_and_before_the_output_folder_exists(lab):
    seen = []

    def claim(out: str) -> None:
        seen.append((out, os.path.exists(out)))

    job = build_job(JobSpec(roots=(str(lab / "lab" / "day"),), out=str(lab / "frames" / "o")), claim=claim)
    assert seen == [(job.settings.out, False)] and os.path.isdir(job.settings.out)
    # A refused claim stops the job before the videos are looked for or the folder is made.
    with pytest.raises(RuntimeError, match="taken"):
        build_job(
            JobSpec(roots=(str(lab / "lab" / "missing"),), out=str(lab / "frames" / "p")),
            claim=lambda out: (_ for _ in ()).throw(RuntimeError("taken")),
        )
    assert not os.path.exists(lab / "frames" / "p")


def test_each_side_words_a_shared_refusal_with_its_own_option_names():
    with pytest.raises(OptionError) as e:
        check("max_side", 0)
    assert str(e.value) == "--max-side must be from 4 to 16384 pixels, not 0"  # the command line
    assert (
        e.value.worded(lambda name: name.replace("_", " "))
        == "max side must be from 4 to 16384 pixels, not 0"
    )
    assert e.value.field == "max_side"
    # A value holding braces is quoted, never read as part of the template.
    spec = JobSpec(roots=("r",), out="o", fps="{0}{x}")
    with pytest.raises(
        Exception, match=r"--fps wants a number like 2 or 0.5 or 30000/1001, not '\{0\}\{x\}'"
    ):
        build_job(spec)


def test_the_web_says_options_by_their_field_names_without_dashes(lab):
    for body, expected in [
        ({"max_side": 512, "square": 256}, "choose max side or square, not both"),
        (
            {"mode": "frames", "value": "1", "dedup": True},
            "dedup works with all frames, every, fps or scenes",
        ),
        ({"ext": ","}, "extensions wants extensions like mp4,mov"),
        ({"mode": "every", "value": "0"}, "every must be 1 or more"),
    ]:
        with pytest.raises(RequestError) as e:
            web_job(lab, {"out": "x", **body})
        assert e.value.message.startswith(expected) and "--" not in e.value.message, e.value.message
