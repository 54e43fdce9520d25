"""An index on UPPER(email) of the user model's table.

A first login looks for local accounts holding the asserted email, ignoring
case (``saml_jit.models.users_with_email``); without this index that reads
every user. The user model is whatever ``AUTH_USER_MODEL`` names, so the
index is added here, with ``RunPython``, rather than declared on the model:
Django's model state does not track it (``makemigrations`` stays quiet), and
on SQLite a later migration that rebuilds the user table drops it — apply
this migration again (``migrate saml_jit 0005`` then ``migrate saml_jit``)
if that happens.
"""

from django.conf import settings
from django.db import migrations, router


def _target(apps):
    from django.contrib.auth import get_user_model

    from saml_jit.models import user_email_index

    user_model = get_user_model()
    index = user_email_index(user_model)
    if index is None:
        return None, None
    return apps.get_model(user_model._meta.label), index


def add_index(apps, schema_editor):
    model, index = _target(apps)
    if index is not None and router.allow_migrate_model(schema_editor.connection.alias, model):
        schema_editor.add_index(model, index)


def remove_index(apps, schema_editor):
    model, index = _target(apps)
    if index is not None and router.allow_migrate_model(schema_editor.connection.alias, model):
        schema_editor.remove_index(model, index)


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("saml_jit", "0005_replay_record_is_the_event"),
    ]

    operations = [migrations.RunPython(add_index, remove_index, elidable=False)]
