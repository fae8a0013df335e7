"""Uploads against local emulators only (tests/targets/cloud_servers.py, 127.0.0.1): S3 and EC2 ImportImage on
moto's server, the VHD page blob on Azurite. What arrived is read back through the emulators (the S3 object,
the blob's bytes and page ranges) and the request vmferry sent is read from moto's recorder."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import parse_qs

import pytest

from tests.disks.conftest import make_raw
from tests.targets import cloud_servers
from vmferry.disks.convert import convert_disk, open_disk
from vmferry.errors import TargetError
from vmferry.targets.aws_import import ImportDisk, build_request

MIB = 1 << 20


def sha256(path_or_bytes) -> str:
    if isinstance(path_or_bytes, bytes):
        return hashlib.sha256(path_or_bytes).hexdigest()
    with open(path_or_bytes, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def moto_server(tmp_path, monkeypatch):
    with cloud_servers.moto(tmp_path) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        yield server


@pytest.fixture
def azurite_server(tmp_path):
    with cloud_servers.azurite(tmp_path) as server:
        yield server


def query_of(doc: dict) -> dict[str, list[str]]:
    """The EC2 query-protocol form of an ImportImage call, as botocore serialises it (not vmferry)."""
    import botocore.session
    from botocore.serialize import create_serializer

    model = botocore.session.get_session().get_service_model("ec2").operation_model("ImportImage")
    body = create_serializer("ec2").serialize_to_request(doc, model)["body"]   # {name: value}, Action included
    return {k: [str(v)] for k, v in body.items()}


def moto_implements_import_image() -> bool:
    from moto.ec2.responses import EC2Response

    return any(hasattr(cls, "import_image") for cls in EC2Response.__mro__)


def test_aws_upload_to_moto(tmp_path, moto_server):
    from vmferry.sites.aws import AwsSettings, upload_and_import

    raw = make_raw(tmp_path / "d.raw", 6 * MIB, [(0, 200_000), (3 * MIB, 70_000)])
    vmdk = tmp_path / "web01-disk1.vmdk"
    convert_disk(open_disk(raw), vmdk, "vmdk-stream")
    moto_server.client("s3").create_bucket(Bucket="vmferry-images")
    settings = AwsSettings("vmferry-images", "web01/", endpoint_url=moto_server.endpoint)
    request = build_request([ImportDisk(settings.key(vmdk.name), "vmdk-stream")], bucket=settings.bucket,
                            boot_mode="legacy-bios", platform="Linux", description="web01")
    if moto_implements_import_image():   # pragma: no cover - moto 5.2 does not
        result = upload_and_import([(os.fspath(vmdk), settings.key(vmdk.name))], request, settings)
        assert result["import"]["import_task_id"]
    else:
        # moto's EC2 has no ImportImage: the S3 part is real, the import request is checked as sent
        with pytest.raises(TargetError, match="EC2 ImportImage failed"):
            upload_and_import([(os.fspath(vmdk), settings.key(vmdk.name))], request, settings)
    obj = moto_server.client("s3").get_object(Bucket="vmferry-images", Key="web01/web01-disk1.vmdk")
    assert sha256(obj["Body"].read()) == sha256(vmdk)
    sent = [parse_qs(r["body"].decode(), keep_blank_values=True) for r in moto_server.requests()
            if r["method"] == "POST" and b"Action=ImportImage" in r["body"]]
    assert sent, "no ImportImage request reached the server"
    assert sent[0] == query_of(request)
    assert sent[0]["DiskContainer.1.UserBucket.S3Key"] == ["web01/web01-disk1.vmdk"]
    assert sent[0]["DiskContainer.1.Format"] == ["VMDK"] and sent[0]["BootMode"] == ["legacy-bios"]


def test_aws_upload_to_a_missing_bucket_is_one_clear_error(tmp_path, moto_server):
    from vmferry.sites.aws import AwsSettings, upload_images

    f = make_raw(tmp_path / "x.raw", MIB, [(0, 512)])
    with pytest.raises(TargetError, match="NoSuchBucket"):
        upload_images([(f, "x.raw")], AwsSettings("no-such-bucket", endpoint_url=moto_server.endpoint))


def test_azure_page_blob_upload_to_azurite(tmp_path, azurite_server):
    from vmferry.sites.azure import AzureSettings, upload_vhd

    raw = make_raw(tmp_path / "d.raw", 9 * MIB + 4096, [(0, 100_000), (5 * MIB + 512, 3000), (9 * MIB, 4096)])
    vhd = tmp_path / "web01.vhd"
    convert_disk(open_disk(raw), vhd, "vhd-fixed", align=MIB)
    settings = AzureSettings("vhds", connection_string=azurite_server.connection_string)
    result = upload_vhd(os.fspath(vhd), settings)
    size = os.path.getsize(vhd)
    assert size == 10 * MIB + 512 and result["size"] == size
    blob = azurite_server.service().get_blob_client("vhds", "web01.vhd")
    props = blob.get_blob_properties()
    assert props.blob_type == "PageBlob" and props.size == size
    ranges = [{"start": r.start, "end": r.end} for r in blob.list_page_ranges() if not r.cleared]
    # only the ranges holding data were written, each 512-aligned; the footer is among them
    written = sum(r["end"] + 1 - r["start"] for r in ranges)
    assert all(r["start"] % 512 == 0 and (r["end"] + 1) % 512 == 0 for r in ranges)
    assert written == result["sent"] < 1 * MIB
    assert any(r["start"] <= size - 512 and r["end"] == size - 1 for r in ranges)
    assert sha256(blob.download_blob().readall()) == sha256(vhd)


def test_azure_upload_refused_by_the_server_is_one_clear_error(tmp_path, azurite_server):
    from vmferry.sites.azure import AzureSettings, upload_vhd

    vhd = tmp_path / "x.vhd"
    convert_disk(open_disk(make_raw(tmp_path / "x.raw", MIB, [(0, 512)])), vhd, "vhd-fixed")
    bad = azurite_server.connection_string.replace(cloud_servers.AZURITE_KEY, "d3Jvbmcga2V5" * 7 + "AA==")
    with pytest.raises(TargetError, match="Azure page blob upload of x.vhd"):
        upload_vhd(os.fspath(vhd), AzureSettings("vhds", connection_string=bad))
