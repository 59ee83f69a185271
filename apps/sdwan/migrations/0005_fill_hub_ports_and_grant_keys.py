from django.db import migrations

FIRST_PORT = 51820


def _endpoint_port(endpoint: str) -> int | None:
    if not endpoint or ":" not in endpoint:
        return None
    try:
        return int(endpoint.rsplit(":", 1)[1])
    except ValueError:
        return None


def fill(apps, schema_editor):
    """Every network gets a hub listen port (its endpoint's port, else the lowest free one from 51820; a port
    two endpoints name goes to the older network) and every grant the hub key its config names."""
    SdwanNetwork = apps.get_model("sdwan", "SdwanNetwork")
    AccessGrant = apps.get_model("sdwan", "AccessGrant")
    networks = list(SdwanNetwork.objects.order_by("created_at", "id"))
    taken: set[int] = set()
    later = []
    for network in networks:
        port = _endpoint_port(network.hub_endpoint)
        if port is not None and port not in taken:
            taken.add(port)
            network.hub_listen_port = port
            network.save(update_fields=["hub_listen_port"])
        else:
            later.append(network)
    port = FIRST_PORT
    for network in later:
        while port in taken:
            port += 1
        taken.add(port)
        network.hub_listen_port = port
        network.save(update_fields=["hub_listen_port"])
    for network in networks:
        AccessGrant.objects.filter(network_id=network.id).update(hub_public_key=network.hub_public_key)


class Migration(migrations.Migration):
    dependencies = [("sdwan", "0004_hub_keys_on_the_hub")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
