"""The lab's image, built here because nothing can be pulled from a public registry:
``FROM scratch`` + Debian's static busybox serving /www with ``httpd`` on port 80.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import docker

from lab.proc import BUSYBOX_STATIC, LabError

IMAGE_REPOSITORY = "powernode/busybox-httpd"
IMAGE_TAG = "1"
INDEX_HTML = "<!doctype html><title>powernode lab</title><p>hello from the powernode lab</p>\n"

DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY index.html /www/index.html
EXPOSE 80
CMD ["/bin/httpd", "-f", "-p", "80", "-h", "/www"]
"""


def build_context(busybox: Path = BUSYBOX_STATIC, index_html: str = INDEX_HTML) -> bytes:
    """The build context as a tar: Dockerfile, the static busybox binary, index.html."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, mode in [
            ("Dockerfile", DOCKERFILE.encode(), 0o644),
            ("busybox", busybox.read_bytes(), 0o755),
            ("index.html", index_html.encode(), 0o644),
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_and_push(docker_socket: Path, registry_host: str, *, repository: str = IMAGE_REPOSITORY,
                   tag: str = IMAGE_TAG) -> str:
    """Build with a lab dockerd's classic builder (no BuildKit, no network) and push; returns the ref."""
    ref = f"{registry_host}/{repository}"
    api = docker.APIClient(base_url=f"unix://{docker_socket}", version="1.41", timeout=120)
    try:
        events = api.build(
            fileobj=io.BytesIO(build_context()), custom_context=True, tag=f"{ref}:{tag}", rm=True,
            forcerm=True, network_mode="none", decode=True,
        )
        _raise_on_error(events, "build")
        _raise_on_error(api.push(ref, tag=tag, stream=True, decode=True), "push")
    finally:
        api.close()
    return f"{ref}:{tag}"


def _raise_on_error(events: object, what: str) -> None:
    log = []
    for event in events:  # type: ignore[attr-defined]
        if "error" in event:
            raise LabError(f"image {what} failed: {event['error']}\n{''.join(log)[-2000:]}")
        log.append(str(event.get("stream") or event.get("status") or ""))
