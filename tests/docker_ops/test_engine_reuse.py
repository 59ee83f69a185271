"""One engine per host and platform keypair: a docker_* call reads six small columns of its host (status
checked every time) and builds an engine, reading and decrypting the key, only when there is none for the
host's endpoint and client certificate serial (issue 14: docker_list_containers' overhead)."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.docker_hosts.adapters.engine import forget_engine
from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.services import operations
from apps.docker_hosts.services.client_keypair import CLIENT_KEYPAIR_FIELDS, client_keypair_issue
from apps.docker_hosts.services.host_state import save_fields
from powernode.actors import Actor
from powernode.errors import HostNotConnectedError


@pytest.fixture
def host_id(agent) -> str:
    agent.walk_to_ready()
    host_id = DockerHost.objects.get().id
    yield host_id
    operations._ENGINES.pop(host_id, None)
    forget_engine(host_id)


def test_the_engine_is_built_once_and_reused_without_reading_the_key(host_id, django_assert_num_queries):
    with django_assert_num_queries(2):  # the host's small columns, then its key material (first call)
        first = operations._engine(operations._host(host_id))
    with django_assert_num_queries(1):  # the host's small columns only
        again = operations._engine(operations._host(host_id))
    assert again is first and not first.closed


def test_a_renewed_client_keypair_gets_a_new_engine(host_id):
    first = operations._engine(operations._host(host_id))
    with transaction.atomic():
        host = DockerHost.objects.select_for_update().get(pk=host_id)
        client_keypair_issue(host=host, actor=Actor(label="test"))
        save_fields(host, *CLIENT_KEYPAIR_FIELDS)
    renewed = operations._engine(operations._host(host_id))
    assert renewed is not first and first.closed  # the old one's pool closed and its PEM files removed


def test_the_status_is_read_every_call(host_id):
    engine = operations._engine(operations._host(host_id))
    DockerHost.objects.filter(pk=host_id).update(status=DockerHost.Status.UNREACHABLE)
    with pytest.raises(HostNotConnectedError):
        operations._engine(operations._host(host_id))
    DockerHost.objects.filter(pk=host_id).update(status=DockerHost.Status.CONNECTED)
    assert operations._engine(operations._host(host_id)) is engine
