"""ansible-lint (production profile) and --syntax-check on every playbook."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from ansible_paths import ANSIBLE_DIR, REPO

PLAYBOOKS = ["site.yml", "detach-disk.yml"]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: pip install -r ansible/requirements.txt")
    return path


@pytest.mark.slow  # two and a half minutes: kept out of the quick loop
def test_ansible_lint_production_profile():
    proc = subprocess.run(
        [_tool("ansible-lint"), "--profile", "production", "--nocolor"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook):
    proc = subprocess.run(
        [_tool("ansible-playbook"), "--syntax-check", playbook, "-e", "disk=x"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _example_inventory() -> dict:
    proc = subprocess.run(
        [_tool("ansible-inventory"), "-i", os.path.join(REPO, "inventory.ini"), "--list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_example_inventory_has_the_three_groups():
    inv = _example_inventory()
    assert inv["storage"]["hosts"] == ["master"]
    assert inv["scheduler"]["hosts"] == ["master"]
    assert inv["workers"]["hosts"] == ["slave1", "slave2"]
    assert sorted(inv["lab"]["children"]) == ["scheduler", "storage", "workers"]
    # A lab has no DNS for these names: every host is known by its address.
    hostvars = inv["_meta"]["hostvars"]
    assert {h: v["ansible_host"] for h, v in hostvars.items()} == {
        "master": "192.0.2.10",
        "slave1": "192.0.2.11",
        "slave2": "192.0.2.12",
    }


def _render(host: str, expression: str, *role_defaults: str) -> str:
    """Evaluate a Jinja expression for one host of the example inventory, with
    ansible/group_vars and the given roles' defaults, as the roles would."""
    args = [_tool("ansible"), host, "-i", os.path.join(REPO, "inventory.ini"), "--playbook-dir", ANSIBLE_DIR]
    args += ["-c", "local", "-m", "ansible.builtin.debug", "-a", f"msg={{{{ {expression} }}}}"]
    for role in role_defaults:
        args += ["-e", f"@{os.path.join(ANSIBLE_DIR, 'roles', role, 'defaults', 'main.yml')}"]
    args += ["-e", "ansible_managed=managed", "-o"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ANSIBLE_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # -o: "host | SUCCESS => {...}" on one line.
    return json.loads(proc.stdout.split("=>", 1)[1])["msg"]


def test_ip_only_inventory_renders_addresses_never_names():
    """Every address one node gives another comes from ansible_host."""
    names = re.compile(r"\b(master|slave1|slave2)\b")
    worker_unit = _render(
        "slave1",
        "lookup('ansible.builtin.template', 'roles/snhoo_dask_worker/templates/worker.service.j2')",
        "snhoo_dask_worker",
    )
    execstart = worker_unit.split("ExecStart=", 1)[1].split("\n\n")[0]
    assert "dask worker tcp://192.0.2.10:8786" in execstart, execstart
    # Listens on (and so gives the scheduler) its own address.
    assert "--host 192.0.2.11" in execstart, execstart
    exports = _render(
        "master",
        "lookup('ansible.builtin.template', 'roles/snhoo_nfs_server/templates/exports.j2',"
        " template_vars={'__snhoo_nfs_server_disks': [{'name': 'usb1'}]})",
        "snhoo_nfs_server",
    )
    lines = [ln for ln in exports.splitlines() if ln and not ln.startswith("#")]
    # The listed disk, the host's hot-plug folder (named by the host: a path, not an
    # address), the output.
    assert [ln.split()[0] for ln in lines] == [
        "/srv/snhoo/disks/usb1",
        "/srv/snhoo/disks/master",
        "/srv/snhoo/output",
    ], exports
    assert "crossmnt" in lines[1] and "ro," in lines[1]
    for line in lines:
        hosts = [c.split("(")[0] for c in line.split()[1:]]
        assert hosts == ["192.0.2.11", "192.0.2.12"], line
    lines = [" ".join(ln.split()[1:]) for ln in lines]
    web_unit = _render(
        "master",
        "lookup('ansible.builtin.template', 'roles/snhoo_web/templates/web.service.j2')",
        "snhoo_web",
    )
    assert "--scheduler tcp://192.0.2.10:8786" in web_unit, web_unit
    assert "--allowed-host 192.0.2.10" in web_unit and "--allowed-host master" in web_unit, web_unit
    for host in ("slave1", "slave2", "master"):
        assert _render(host, "snhoo_storage_address") == "192.0.2.10"
    for text in (execstart, "\n".join(lines)):
        assert not names.search(text.replace("--name slave1", "")), text


def test_web_token_stays_out_of_the_unit():
    unit = _render(
        "master",
        "lookup('ansible.builtin.template', 'roles/snhoo_web/templates/web.service.j2')",
        "snhoo_web",
    )
    assert "EnvironmentFile=-/etc/snhoo-dask/web.env" in unit
    assert "--token" not in unit and "SNHOO_TOKEN=" not in unit


def test_only_the_test_inventory_turns_nfs_simulation_on():
    """snhoo_nfs_simulate must never be on in anything a lab would run."""
    offenders = []
    for root, _dirs, files in os.walk(ANSIBLE_DIR):
        for name in files:
            with open(os.path.join(root, name), encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if (
                        "snhoo_nfs_simulate" in line
                        and "true" in line.lower()
                        and not line.lstrip().startswith("#")
                    ):
                        offenders.append(os.path.join(root, name))
    with open(os.path.join(REPO, "inventory.ini"), encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("snhoo_nfs_simulate") and "true" in line.lower():
                offenders.append("inventory.ini")
    assert not offenders


def test_the_udev_rule_starts_the_hot_plug_unit_for_accepted_filesystems_only():
    rules = _render(
        "master",
        "lookup('ansible.builtin.template', 'roles/snhoo_disks/templates/90-snhoo-disks.rules.j2')",
        "snhoo_disks",
    )
    add, remove = [ln for ln in rules.splitlines() if ln and not ln.startswith("#")]
    assert (
        add.startswith('ACTION=="add", SUBSYSTEM=="block"')
        and 'ENV{ID_FS_TYPE}=="ext4|xfs|exfat|ntfs"' in add
    )
    assert add.endswith('ENV{SYSTEMD_WANTS}+="snhoo-disk@%k.service"'), add
    assert remove.startswith('ACTION=="remove"') and "stop snhoo-disk@%k.service" in remove
    # The default rule is the conservative one: only disks labelled for the lab.
    assert _render("master", "snhoo_disks_hotplug_labels", "snhoo_disks") == ["SNHOO*"]
    assert _render("master", "snhoo_disks_hotplug_any", "snhoo_disks") is False
