"""Amazon EC2 as a site: upload converted images to S3 and start VM Import/Export's ``ImportImage``.

    result = upload_and_import([("out/web01-disk1.vmdk", "web01/disk1.vmdk")], request, AwsSettings(bucket="b"))

Through boto3 (``vmferry[aws]``). Credentials come from boto3's own chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, instance roles...), never from vmferry; the region and
endpoint from :class:`AwsSettings` or the environment (``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL``), so an S3/EC2-compatible endpoint (moto's server in the tests) is one setting.
Images go up as multipart uploads (8 MiB parts, several at once) and are checked by size afterwards;
the ImportImage request is the document :mod:`vmferry.targets.aws_import` wrote, sent as it is.
Every AWS error becomes a :class:`~vmferry.errors.TargetError` naming the operation and AWS's code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vmferry.errors import TargetError, UsageError

PART = 8 << 20


@dataclass(frozen=True)
class AwsSettings:
    bucket: str
    prefix: str = ""                    # key prefix in the bucket ("vm/"): images are PREFIX + file name
    region: str | None = None           # default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1
    endpoint_url: str | None = None     # default: AWS_ENDPOINT_URL, else AWS's own endpoints

    @classmethod
    def from_options(cls, options: dict) -> AwsSettings:
        bucket = options.get("bucket") or os.environ.get("VMFERRY_AWS_BUCKET")
        if not bucket:
            raise UsageError("an AWS upload needs the S3 bucket (bucket option, or VMFERRY_AWS_BUCKET)")
        prefix = options.get("prefix") or ""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(bucket, prefix, options.get("region"), options.get("endpoint_url"))

    def key(self, name: str) -> str:
        return self.prefix + name


def _clients(settings: AwsSettings):
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:   # pragma: no cover - the extra is installed in the test environment
        raise TargetError("uploading to AWS needs boto3 (pip install 'vmferry[aws]')") from exc
    region = settings.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    endpoint = settings.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=120)
    session = boto3.session.Session(region_name=region)
    return (session.client("s3", endpoint_url=endpoint, config=config),
            session.client("ec2", endpoint_url=endpoint, config=config))


def _failed(what: str, exc: Exception) -> TargetError:
    from botocore.exceptions import ClientError
    from botocore.parsers import ResponseParserError

    if isinstance(exc, ResponseParserError):
        status = next((w for w in str(exc).split() if w.isdigit() and len(w) == 3), "")
        return TargetError(f"AWS {what} failed: the endpoint's answer is not an AWS response"
                           + (f" (HTTP {status})" if status else "") + "; does it implement the operation?")

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return TargetError(f"AWS {what} failed: {err.get('Code') or status}: {err.get('Message') or exc}")
    text = str(exc)
    return TargetError(f"AWS {what} failed: {text.split(': ', 1)[1] if ': An error occurred' in text else text}")


def upload_images(files: list[tuple[str, str]], settings: AwsSettings, *, s3=None) -> list[dict]:
    """Put each ``(local path, key)`` into the bucket; [{key, size, etag}]. The object's size is read
    back and must equal the file's."""
    from boto3.exceptions import Boto3Error
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = s3 or _clients(settings)[0]
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=4)
    out = []
    for path, key in files:
        size = os.path.getsize(path)
        try:
            s3.upload_file(path, settings.bucket, key, Config=config)
            head = s3.head_object(Bucket=settings.bucket, Key=key)
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            raise _failed(f"S3 upload of {os.path.basename(path)} to s3://{settings.bucket}/{key}", exc) from exc
        if head.get("ContentLength") != size:
            raise TargetError(f"s3://{settings.bucket}/{key} holds {head.get('ContentLength')} bytes after the "
                              f"upload, the image {size}", path=path)
        out.append({"key": key, "bucket": settings.bucket, "size": size, "etag": head.get("ETag", "").strip('"')})
    return out


def start_import(request: dict, settings: AwsSettings, *, ec2=None) -> dict:
    """Send the ImportImage ``request``; {import_task_id, status}."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    ec2 = ec2 or _clients(settings)[1]
    try:
        answer = ec2.import_image(**request)
    except (BotoCoreError, ClientError, ResponseParserError) as exc:
        raise _failed("EC2 ImportImage", exc) from exc
    return {"import_task_id": answer.get("ImportTaskId"), "status": answer.get("Status"),
            "status_message": answer.get("StatusMessage")}


def upload_and_import(files: list[tuple[str, str]], request: dict, settings: AwsSettings) -> dict:
    """Upload the images, then start the import; the uploads and the task (the request as sent too)."""
    s3, ec2 = _clients(settings)
    uploads = upload_images(files, settings, s3=s3)
    return {"uploads": uploads, "request": request, "import": start_import(request, settings, ec2=ec2)}
