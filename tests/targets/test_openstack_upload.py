"""``convert --to openstack --upload --cloud NAME``: the real openstacksdk, configured by a clouds.yaml,
talks to a recording Keystone + Glance stand-in on 127.0.0.1 (no Glance runs here: what is checked is
the requests vmferry made through openstacksdk — the token request with the cloud's credentials, the
image created with every Glance property of the written document, the image data uploaded byte for byte)."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import COT, run_vmferry
from tests.targets import glance_recorder


@pytest.fixture
def glance(tmp_path):
    rec, server = glance_recorder.start()
    config = tmp_path / "clouds.yaml"
    config.write_text(f"""clouds:
  testcloud:
    auth:
      auth_url: {rec.url}/identity/v3
      username: demo
      password: not-a-real-secret
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
""")
    try:
        yield rec, {"OS_CLIENT_CONFIG_FILE": str(config)}
    finally:
        server.shutdown()
        server.server_close()


def test_upload_creates_the_image_with_its_properties_and_data(tmp_path, glance):
    rec, env = glance
    out = tmp_path / "osk"
    res = run_vmferry("convert", COT / "input.ovf", "--to", "openstack", "-o", out, "--no-guest", "--upload",
                      "--cloud", "testcloud", "--image-name", "vmferry-upload", "--json", env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    glance_doc = json.loads((out / "input.glance.json").read_text())
    calls = [(r.method, r.path.split("?")[0]) for r in rec.requests]
    auth = next(r for r in rec.requests if r.path.endswith("/auth/tokens"))
    user = json.loads(auth.body)["auth"]["identity"]["password"]["user"]
    assert (user["name"], user["password"]) == ("demo", "not-a-real-secret")
    (create,) = [r for r in rec.requests if (r.method, r.path) == ("POST", "/image/v2/images")]
    sent = json.loads(create.body)
    assert create.headers.get("X-Auth-Token") == "vmferry-test-token"
    assert sent["name"] == "vmferry-upload" == glance_doc["name"]
    for key in ("disk_format", "container_format", "min_disk", "min_ram", "visibility"):
        assert sent[key] == glance_doc[key], key
    assert {k: sent[k] for k in glance_doc["properties"]} == glance_doc["properties"]   # every property, as written
    (image_id,) = rec.images
    (put,) = [r for r in rec.requests if r.method == "PUT"]
    assert put.path == f"/image/v2/images/{image_id}/file"
    assert put.headers.get("Content-Type") == "application/octet-stream"
    assert hashlib.sha256(put.body).digest() == hashlib.sha256((out / "input.qcow2").read_bytes()).digest()
    assert doc["uploads"] == [{"href": "input.qcow2", "where": f"testcloud: image {image_id}", "id": image_id}]
    assert calls.index(("POST", "/image/v2/images")) < calls.index(("PUT", put.path))


def test_upload_to_an_unknown_cloud_is_one_line(tmp_path, glance):
    _, env = glance
    res = run_vmferry("convert", COT / "input.ovf", "--to", "openstack", "-o", tmp_path / "o", "--no-guest",
                      "--upload", "--cloud", "nosuchcloud", env=env, timeout=300)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "nosuchcloud" in res.stderr, res.stderr
