"""The local web app (`blinddps app`): jobs, uploads and examples here need no Gradio; the
page itself is `blinddps.app.ui`, which needs the optional extra (pip install "blinddps[app]").
"""
from .examples import Example, make_examples
from .devices import DeviceQueue, PriorCache, available_devices
from .jobs import TASKS, Job, JobCancelled, JobOutput, JobRunner, JobSettings, JobUpdate, Preview
from .uploads import JobError, UploadError, read_kernel, read_photo

__all__ = ["TASKS", "DeviceQueue", "Example", "Job", "JobCancelled", "JobError", "JobOutput", "JobRunner",
           "JobSettings", "JobUpdate", "PriorCache", "Preview", "UploadError", "available_devices", "make_examples",
           "read_kernel", "read_photo"]
