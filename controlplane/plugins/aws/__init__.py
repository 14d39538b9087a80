"""AWS: S3 object tasks (Upload, Download, List, Delete) and the S3 polling Trigger, via boto3."""

from controlplane.plugins.aws.s3 import Delete, Download, List, Upload
from controlplane.plugins.aws.trigger import Trigger

PLUGINS = (Upload, Download, List, Delete, Trigger)

__all__ = ["PLUGINS"]
