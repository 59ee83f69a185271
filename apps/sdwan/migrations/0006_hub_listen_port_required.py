from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sdwan", "0005_fill_hub_ports_and_grant_keys")]

    operations = [
        migrations.AlterField(
            model_name="sdwannetwork",
            name="hub_listen_port",
            field=models.PositiveIntegerField(
                help_text="UDP port of the hub's WireGuard interface for this network", unique=True
            ),
        ),
    ]
