"""The import-image request document: checked against the published field list (the API reference's,
encoded in vmferry.targets.aws_import) and, independently, against the ImportImage input shape of the EC2
service model that botocore ships (the definition the AWS CLI itself validates --cli-input-json with)."""

from __future__ import annotations

import pytest

from vmferry.errors import TargetError, UsageError
from vmferry.targets.aws_import import REQUEST, ImportDisk, build_request, problems


def botocore_problems(doc: dict) -> list[str]:
    """botocore's own parameter validation of an ImportImage call (no request is sent)."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("ec2").operation_model("ImportImage")
    report = ParamValidator().validate(doc, model.input_shape)
    return [report.generate_report()] if report.has_errors() else []


def shape_fields(shape, depth=0) -> dict:
    if shape.type_name == "structure":
        return {k: shape_fields(v, depth + 1) for k, v in shape.members.items()}
    if shape.type_name == "list":
        return {"[]": shape_fields(shape.member, depth + 1)}
    return {"enum": tuple(getattr(shape, "enum", []) or ())}


def ours(field) -> dict:
    if field.kind == "structure":
        return {k: ours(v) for k, v in field.members.items()}
    if field.kind == "list":
        return {"[]": ours(field.item)}
    return {"enum": field.values}


def test_the_field_list_is_the_service_models():
    import botocore.session

    shape = botocore.session.get_session().get_service_model("ec2").operation_model("ImportImage").input_shape
    theirs = shape_fields(shape)

    def names(tree):
        return {k: names(v) for k, v in tree.items() if k != "enum"} if isinstance(tree, dict) else tree

    assert names({k: ours(v) for k, v in REQUEST.items()}) == names(theirs)
    # where the model lists values they are the reference's (the model lists BootMode's only)
    assert theirs["BootMode"]["enum"] == REQUEST["BootMode"].values


def test_request_for_disks_in_a_bucket():
    doc = build_request([ImportDisk("vm/web01-disk1.vmdk", "vmdk-stream", "boot"), ImportDisk("vm/d2.vhd", "vhd-fixed")],
                        bucket="images", boot_mode="uefi", platform="Linux", license_type="BYOL",
                        description="web01 from web01.ova", role_name="vmimport")
    assert doc["DiskContainers"] == [
        {"Description": "boot", "Format": "VMDK", "UserBucket": {"S3Bucket": "images", "S3Key": "vm/web01-disk1.vmdk"}},
        {"Description": "disk 2", "Format": "VHD", "UserBucket": {"S3Bucket": "images", "S3Key": "vm/d2.vhd"}}]
    assert (doc["BootMode"], doc["Platform"], doc["LicenseType"], doc["Architecture"]) == ("uefi", "Linux", "BYOL",
                                                                                         "x86_64")
    assert problems(doc) == [] and botocore_problems(doc) == []


def test_problems_name_what_does_not_fit():
    doc = {"DiskContainers": [{"Format": "QCOW2", "UserBucket": {"S3Bucket": "b", "S3Key": "k", "Region": "x"}}],
           "BootMode": "uefi-preferred", "Encrypted": "yes", "Colour": "blue"}
    found = problems(doc)
    assert any("Format: 'QCOW2' is not one of OVA, VHD, VHDX, VMDK, RAW" in p for p in found)
    assert any("UserBucket.Region: not a field" in p for p in found)
    assert any("Encrypted: a boolean is expected" in p for p in found)
    assert any("Colour: not a field" in p for p in found)
    assert botocore_problems(doc)          # botocore refuses it too (unknown keys, wrong types)


def test_refusals():
    with pytest.raises(UsageError, match="uefi-preferred"):
        build_request([ImportDisk("k", "vmdk-stream")], bucket="b", boot_mode="uefi-preferred")
    with pytest.raises(TargetError, match="no qcow2 images"):
        build_request([ImportDisk("k", "qcow2")], bucket="b", boot_mode="uefi")
    with pytest.raises(TargetError):
        build_request([], bucket="b", boot_mode="uefi")
    with pytest.raises(UsageError, match="bucket"):
        build_request([ImportDisk("k", "raw")], bucket="", boot_mode="legacy-bios")
