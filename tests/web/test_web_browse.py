"""The new-job page's disk list, folder picker and eject, in a real browser (Chromium) and
through the API: a folder with a Chinese name is browsed into and picked (and a job then
runs on it), a link out of --allow is neither listed nor readable, names no form can carry
are shown but not offered, everything needs the token, the eject of a busy disk says why
it refused, and the page fits a phone's width."""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import pytest
from helpers import CHROMIUM_ARGS, call, lab_disk, start_embedded_serve, touch
from videos import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SHOTS = "/work/notes/shots"
CHINESE = "录像 二"  # with a space too


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browse")
    root, disks, outside = tmp / "lab", tmp / "disks", tmp / "outside"
    make_video(str(root / CHINESE / "cam" / "a.mp4"), seconds=1)
    touch(str(root / "day 1" / "b.mp4"))
    touch(str(root / "day 1" / "c.mkv"))
    touch(str(outside / "secret" / "s.mp4"))
    os.symlink(outside, root / "escape")  # a link out of --allow
    os.makedirs(root / "line\nbreak")
    os.makedirs(os.fsencode(root) + b"/raw\xff")
    touch(str(root / "notes.txt"))
    # Two disks of storage host "store1", as its hot-plug unit leaves them.
    usb = lab_disk(disks, "store1", "USB-A", "127.0.0.1", label="USB A 数据")
    touch(os.path.join(usb, "d1", "x.mp4"))
    lab_disk(disks, "store1", "OLD", "127.0.0.1", state="unplugged", reason="the device went away")
    # The eject's busy check, as snhoo-dask-busy answers for a disk something still reads.
    busy = tmp / "busy"
    busy.write_text("#!/bin/sh\necho 'ffmpeg (pid 4242) has files open on '\"$1\"\nexit 1\n")
    busy.chmod(0o755)
    config = tmp / "hotplug.json"
    config.write_text(json.dumps({"host": "store1", "base": str(disks)}))
    frames = tmp / "frames"
    frames.mkdir()
    env = {
        "SNHOO_DISKS_BASE": str(disks),
        "SNHOO_HOTPLUG_CONFIG": str(config),
        "SNHOO_BUSY_COMMAND": str(busy),
    }
    svc = start_embedded_serve(str(tmp), [str(root), str(disks)], [str(frames)], env=env)
    try:
        yield svc, root, disks, frames
    finally:
        svc.stop()


def at(ref: str) -> str:
    """The API address of a folder ref, quoted as the page quotes it."""
    return "/api/folders?at=" + quote(ref, safe="")


def names(listing: dict) -> list[str]:
    return [f["name"] for f in listing["folders"]]


def test_the_disk_list_the_folder_api_and_the_eject_need_the_token(lab):
    svc = lab[0]
    for path in ("/api/disks", "/api/folders", "/api/folders?at=0:", "/api/folders?at=0:escape"):
        status, answer = call(svc.url + path)
        assert status == 401, (path, answer)
        assert "log in" in answer["error"] and "secret" not in json.dumps(answer)
    status, answer = call(svc.url + "/api/disks/eject", "POST", {"name": "USB-A"})
    assert status == 401
    status, answer = call(svc.url + "/api/folders?at=0:", token="wrong-token-wrong-token")
    assert status == 401


def test_a_link_out_of_allow_is_neither_listed_nor_read(lab):
    svc, root = lab[0], lab[1]
    status, top = svc.call(at("0:"))
    assert status == 200
    assert names(top) == ["day 1", "line\\nbreak", "raw\\xff", CHINESE]  # no link, no file
    assert top["videos_here"] == 0 and top["videos"] == 3
    for ref in ("0:escape", "0:escape/secret", "0:escape%2Fsecret"):
        status, answer = svc.call(at(ref))
        assert status == 403, (ref, answer)
        assert "symbolic link" in answer["error"] and "s.mp4" not in json.dumps(answer)
    for ref in ("0:..", "0:day 1/../escape", "0:/etc", "9:", "x", "9" * 5000 + ":", "0:a%00b", "-1:"):
        status, answer = svc.call(at(ref))
        assert status == 400, (ref, answer)
    # Names a form cannot carry are browsable, not pickable; the others are pickable as typed.
    by_name = {f["name"]: f for f in top["folders"]}
    assert by_name["line\\nbreak"]["path"] is None and "line break" in by_name["line\\nbreak"]["why_not"]
    assert by_name["raw\\xff"]["path"] is None and "UTF-8" in by_name["raw\\xff"]["why_not"]
    assert by_name[CHINESE]["path"] == os.path.join(str(root), CHINESE)
    status, inside = svc.call(at(by_name["raw\\xff"]["ref"]))
    assert status == 200 and inside["folders"] == [] and inside["shown"].endswith("raw\\xff")
    # A symlinked ROOT typed into the API is refused like before: the picker adds no way round.
    status, answer = svc.call("/api/jobs", "POST", {"roots": [str(root / "escape")], "out": "x"})
    assert status in (400, 403) and "escape" in answer["error"]


def test_the_disk_list_says_what_each_disk_holds(lab):
    svc = lab[0]
    status, answer = svc.call("/api/disks")
    assert status == 200
    disks = {d["name"]: d for d in answer["disks"]}
    assert disks["USB-A"]["state"] == "plugged" and disks["USB-A"]["videos"] == 1
    assert disks["USB-A"]["label"] == "USB A 数据" and disks["USB-A"]["free_bytes"] > 0
    assert disks["OLD"]["state"] == "unplugged" and disks["OLD"]["videos"] is None


def test_an_eject_of_a_busy_disk_is_refused_with_the_reason(lab):
    svc = lab[0]
    status, answer = svc.call("/api/disks/eject", "POST", {"name": "USB-A"})
    assert status == 409
    assert "still in use" in answer["error"] and "ffmpeg (pid 4242)" in answer["error"]
    status, answer = svc.call("/api/disks/eject", "POST", {"name": "NOPE"})
    assert status == 409 and "no hot-plugged disk 'NOPE'" in answer["error"]
    status, answer = svc.call("/api/disks/eject", "POST", {"name": "../x"})
    assert status == 400


def test_an_eject_asked_of_a_service_on_another_machine_says_where_to_run_it(tmp_path, monkeypatch):
    from snhoo_dask.web.browse import eject_here

    lab_disk(tmp_path, "store2", "USB-B", "192.0.2.21")
    monkeypatch.setenv("SNHOO_HOTPLUG_CONFIG", str(tmp_path / "none.json"))  # not a storage host
    result = eject_here("USB-B", str(tmp_path))
    assert not result.ok
    assert "run 'sudo snhoo-dask disks --eject USB-B' on store2" in result.message
    assert not eject_here("NOPE", str(tmp_path)).ok


def _fits(page) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth")
    offenders = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > "
        "innerWidth + 1).slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + "
        "Math.round(e.getBoundingClientRect().right))"
    )
    assert wide <= page.viewport_size["width"], f"the page is {wide} px wide: {offenders}"


def test_in_a_browser_the_picker_picks_a_chinese_folder_and_the_disks_show(lab):
    from playwright.sync_api import expect, sync_playwright

    svc, root, _, frames = lab
    os.makedirs(SHOTS, exist_ok=True)
    chinese = os.path.join(str(root), CHINESE)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for width, height, tag in ((1280, 800, "desktop"), (390, 844, "phone")):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(svc.login_url())
                row = page.locator("#disks tr[data-disk='USB-A']")
                expect(row).to_contain_text("USB A 数据")
                expect(row).to_contain_text("plugged")
                expect(row.locator("td.num").first).to_contain_text("B")  # its size, read live
                expect(page.locator("#disks tr[data-disk='OLD']")).to_contain_text("unplugged")
                _fits(page)
                page.locator("#disks-box").screenshot(path=f"{SHOTS}/disks-{tag}.png")

                # The eject of a busy disk: the reason, on the page.
                row.locator("button.eject").click()
                expect(page.locator("#eject-message")).to_contain_text("still in use")
                expect(page.locator("#eject-message")).to_contain_text("ffmpeg (pid 4242)")

                # A disk's Browse opens it in the picker.
                row.locator("button", has_text="Browse").click()
                expect(page.locator("#here")).to_contain_text("USB-A · 1 video")
                page.locator("#crumbs button", has_text="Allowed folders").click()

                # Browse: the allowed folders, then into the lab, then the Chinese folder.
                page.locator("#folders button.open", has_text=str(root)).click()
                expect(page.locator("#folders li.folder", has_text=CHINESE)).to_contain_text("1 video")
                assert "escape" not in page.locator("#folders").inner_text()
                expect(page.locator("#folders li", has_text="raw\\xff")).to_contain_text("cannot be picked")
                page.locator("#folders button.open", has_text=CHINESE).click()
                expect(page.locator("#here")).to_contain_text("1 video")
                _fits(page)
                page.locator("#picker").screenshot(path=f"{SHOTS}/picker-{tag}.png")
                page.locator("#here button.pick").click()
                assert page.locator("#roots").input_value() == chinese
                expect(page.locator("#here button.pick")).to_have_text("✓ picked")
                page.screenshot(path=f"{SHOTS}/submit-{tag}.png", full_page=True)
                if tag == "phone":
                    page.close()
                    continue
                # The picked root is a root like a typed one: a job runs on it.
                page.locator("#out").fill(str(frames / "picked"))
                page.locator("#start").click()
                page.wait_for_url("**/jobs/*")
                job_id = page.url.rsplit("/", 1)[1]
                job = svc.wait_job(job_id)
                assert job["roots"] == [chinese] and job["ok"] == 1, job
                assert os.listdir(frames / "picked" / CHINESE / "cam")
                page.close()
        finally:
            browser.close()


def test_a_folder_on_a_hung_disk_is_not_responding_and_the_rest_still_lists(tmp_path):
    import signal
    import time

    from helpers import mount_ntfs

    lab = tmp_path / "lab"
    touch(str(lab / "day" / "a.mp4"))
    disk = mount_ntfs(str(lab))  # a disk mounted on the folder lab/ntfs
    svc, stopped = None, False
    try:
        touch(os.path.join(disk.path, "cam", "b.mp4"))
        svc = start_embedded_serve(str(tmp_path), [str(lab)], [str(tmp_path)])
        os.kill(disk.proc.pid, signal.SIGSTOP)  # the daemon this test started, by its pid
        stopped = True
        time.sleep(1.5)  # past the kernel's attribute cache: every look asks the daemon
        for _ in range(2):  # the second time too: nothing waits on the stuck first reads again
            started = time.monotonic()
            status, top = svc.call(at("0:"))
            assert status == 200 and time.monotonic() - started < 5, (status, top)
            counts = {f["name"]: f["videos"] for f in top["folders"]}
            assert counts == {"day": 1, "ntfs": None}  # listed, not counted
            started = time.monotonic()
            status, answer = svc.call(at("0:ntfs"))
            assert status == 503 and "not responding" in answer["error"]
            assert time.monotonic() - started < 8
    finally:
        if stopped:
            os.kill(disk.proc.pid, signal.SIGCONT)
        if svc is not None:
            svc.stop()
        disk.unmount()
