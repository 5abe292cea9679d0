"""The shipped systemd unit, drop-in, default configuration and package description.

The unit's hardening is rated by ``systemd-analyze security --offline=yes`` (Debian
package ``systemd``); that test is skipped where the tool is missing. Installing the
packages for real is ``make test-install`` (root, debootstrap).
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.config.static import DEFAULT_CONFIG_PATH, STANDARD_PORTS, parse

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "pillarbox.service"
LOWMEM = ROOT / "systemd" / "pillarbox.service.d" / "lowmem.conf"
CONFIG = ROOT / "packaging" / "pillarbox.toml"
NFPM = ROOT / "packaging" / "nfpm.yaml"
MAX_EXPOSURE = 1.5  # mox's unit rates 3.2


def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> values in order (keys such as SystemCallFilter= repeat)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_unit_exposure_is_at_most_1_5() -> None:
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for pillarbox\.service: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE, r.stdout


def test_unit_runs_the_packaged_server_as_its_user_with_one_capability() -> None:
    s = unit_settings(UNIT)
    assert s["Service.Type"] == ["notify"]  # app.serve sends READY=1
    assert s["Service.User"] == ["pillarbox"] and s["Service.Group"] == ["pillarbox"]
    assert s["Service.ExecStart"] == [f"/usr/bin/pillarbox --config {DEFAULT_CONFIG_PATH} serve"]
    assert s["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["Service.Restart"] == ["on-failure"]
    assert s["Service.AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert s["Service.CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/pillarbox",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "MemoryDenyWriteExecute": "yes",
    }.items():
        assert s[f"Service.{key}"] == [value], key
    assert s["Service.SystemCallFilter"][0] == "@system-service"
    assert s["Install.WantedBy"] == ["multi-user.target"]


def test_unit_stop_timeout_covers_the_graceful_shutdown() -> None:
    from app.serve import SHUTDOWN_GRACE_S

    timeout = unit_settings(UNIT)["Service.TimeoutStopSec"][0]
    assert float(timeout.removesuffix("s")) > SHUTDOWN_GRACE_S + 5


def test_lowmem_drop_in_limits_memory() -> None:
    s = unit_settings(LOWMEM)

    def mib(v: str) -> int:
        return int(v.removesuffix("M"))

    high, hard = mib(s["Service.MemoryHigh"][0]), mib(s["Service.MemoryMax"][0])
    assert 30 < high < hard <= 512


def test_default_config_is_valid_and_matches_the_unit() -> None:
    cfg = parse(CONFIG.read_text(), str(ROOT / "etc" / "pillarbox.toml"))
    unit = unit_settings(UNIT)
    assert cfg.data_dir == unit["Service.ReadWritePaths"][0] == "/var/lib/pillarbox"
    assert unit["Service.WorkingDirectory"] == [cfg.data_dir]
    enabled = {
        (name, svc, lst.port(svc))
        for name, lst in cfg.listeners.items()
        for svc in STANDARD_PORTS
        if getattr(lst, svc).enabled
    }
    public = {svc for name, svc, _ in enabled if name == "public"}
    assert public == set(STANDARD_PORTS) - {"admin_http"}
    # The admin pages only on loopback.
    assert ("internal", "admin_http", 8080) in enabled
    assert set(cfg.listeners["internal"].ips) == {"127.0.0.1", "::1"}


def test_package_description_ships_every_file_it_names() -> None:
    desc = yaml.safe_load(NFPM.read_text())
    dsts = {c["dst"].rstrip("/") for c in desc["contents"]}
    assert {
        "/usr/lib/pillarbox",
        "/usr/bin/pillarbox",
        "/etc/pillarbox/pillarbox.toml",
        "/var/lib/pillarbox",
        "/usr/lib/systemd/system/pillarbox.service",
    } <= dsts
    conf = next(c for c in desc["contents"] if c["dst"] == DEFAULT_CONFIG_PATH)
    assert conf["type"] == "config|noreplace"
    for c in desc["contents"]:
        src = c.get("src", "")
        if src.startswith("./") and not src.startswith("./dist/"):
            assert (ROOT / src).exists(), src
    for script in desc["scripts"].values():
        path = ROOT / script
        assert path.exists(), script
        r = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_purge_is_the_only_thing_that_deletes_data() -> None:
    scripts = ROOT / "packaging" / "scripts"
    for name in ("preinstall.sh", "postinstall.sh", "preremove.sh"):
        assert "rm -" not in (scripts / name).read_text(), name
    text = (scripts / "postremove.sh").read_text()
    purge = text[text.index("purge)") : text.index(";;")]
    assert "rm -rf /var/lib/pillarbox" in purge
    assert text.count("rm -rf") == 1
